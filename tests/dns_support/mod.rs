//! A tiny DNS responder on 127.0.0.1 (UDP) for CAA tests: answers CAA queries from an in-memory zone, like a
//! recursive resolver would (CNAMEs followed in the answer), with switches for NXDOMAIN and SERVFAIL.
//! Test-only: never part of the ctwatch binary.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{CAA, CNAME};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

/// What a name answers.
#[derive(Clone, Debug)]
pub enum Answer {
    /// `issue` (or `issuewild` when the flag is set) records: (wildcard?, issuer domain or None for ";").
    Caa(Vec<(bool, Option<&'static str>)>),
    /// A CNAME to another name of the zone.
    Cname(&'static str),
    ServFail,
}

/// The zone, changeable while the server runs; names not in it are NXDOMAIN.
#[derive(Default)]
pub struct Zone {
    pub names: Mutex<HashMap<String, Answer>>,
    pub queries: AtomicUsize,
}

impl Zone {
    pub fn set(&self, name: &str, answer: Answer) {
        self.names.lock().unwrap().insert(name.to_string(), answer);
    }
}

fn name(s: &str) -> Name {
    Name::from_ascii(format!("{s}.")).unwrap()
}

fn caa_records(owner: &Name, records: &[(bool, Option<&str>)]) -> Vec<Record> {
    records
        .iter()
        .map(|(wild, issuer)| {
            let issuer = issuer.map(|d| Name::from_ascii(d).unwrap());
            let caa = if *wild {
                CAA::new_issuewild(false, issuer, vec![])
            } else {
                CAA::new_issue(false, issuer, vec![])
            };
            Record::from_rdata(owner.clone(), 60, RData::CAA(caa))
        })
        .collect()
}

fn respond(zone: &Zone, query: &Message) -> Message {
    let mut resp = Message::response(query.metadata.id, query.metadata.op_code);
    resp.metadata.message_type = MessageType::Response;
    resp.metadata.recursion_desired = query.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    let Some(q) = query.queries.first().cloned() else {
        resp.metadata.response_code = ResponseCode::FormErr;
        return resp;
    };
    resp.add_query(q.clone());
    let names = zone.names.lock().unwrap();
    let mut current = q
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    for _ in 0..8 {
        match names.get(&current) {
            None => {
                if resp.answers.is_empty() {
                    resp.metadata.response_code = ResponseCode::NXDomain;
                }
                return resp;
            }
            Some(Answer::ServFail) => {
                resp.metadata.response_code = ResponseCode::ServFail;
                return resp;
            }
            Some(Answer::Cname(target)) => {
                resp.add_answer(Record::from_rdata(
                    name(&current),
                    60,
                    RData::CNAME(CNAME(name(target))),
                ));
                current = target.to_string();
            }
            Some(Answer::Caa(records)) => {
                if q.query_type() == RecordType::CAA {
                    resp.add_answers(caa_records(&name(&current), records));
                }
                return resp;
            }
        }
    }
    resp
}

/// Serves `zone` on 127.0.0.1:random (UDP) until the test ends.
pub async fn serve(zone: Arc<Zone>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            zone.queries.fetch_add(1, Ordering::Relaxed);
            let resp = respond(&zone, &query);
            if let Ok(bytes) = resp.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    addr
}
