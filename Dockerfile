# ctwatch in a container: docker build -t ctwatch . && docker run -v ctwatch:/data -v $PWD/watchlists:/watchlists:ro ctwatch
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data ctwatch && mkdir -p /data /watchlists && chown ctwatch /data
COPY --from=build /src/target/release/ctwatch /usr/local/bin/ctwatch
COPY watchlists/example.txt /watchlists/example.txt
USER ctwatch
VOLUME ["/data"]
ENV CTWATCH_DB=/data/ctwatch.db
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ctwatch"]
CMD ["run", "--watchlist", "/watchlists"]
