//! A y-protocol client shared by the y-sweet and y-websocket adapters: the
//! sync handshake (step 1 / step 2 both ways), a publisher that sets Y.Map
//! keys to the stamped payloads (one update per batch, encoded by yrs), and
//! a reader that finds the stamps in each delivered update. One subscriber
//! per step also applies every update to its own doc and checks that the map
//! holds the payload it found, so a counted delivery is a real update.

use crate::{Conn, PubConn, Reader, Received, Stamp, Writer, Ws, read_stamp, scan_stamps};
use futures_util::SinkExt;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::Message;
use yrs::sync::{Message as YMessage, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Any, Doc, Map, MapRef, Out, ReadTxn, Transact, Update};

/// Map keys cycle through this many names: values are overwritten (as a
/// field set would be) and the doc stays small.
const KEYS: u64 = 1024;
/// Largest update one message carries, like a Spoke `Submit` frame.
const UPDATE_BUDGET: usize = 192 * 1024;

fn key(seq: u64) -> String {
    format!("k{}", seq % KEYS)
}

fn binary(msg: YMessage) -> Message {
    Message::Binary(msg.encode_v1().into())
}

/// Connects and completes the y-protocol handshake: sends sync step 1
/// (`doc`'s state vector), answers the server's step 1 with step 2 (what the
/// server lacks), and waits for the server's step 2 (the document).
pub async fn connect(url: &str, doc: &Doc) -> anyhow::Result<Ws> {
    let mut ws = crate::connect_ws(url).await?;
    let sv = doc.transact().state_vector();
    ws.send(binary(YMessage::Sync(SyncMessage::SyncStep1(sv))))
        .await?;
    let (mut answered, mut synced) = (false, false);
    while !(answered && synced) {
        let msg = crate::next_within(&mut ws, 10, "y-protocol handshake").await?;
        let Message::Binary(bytes) = msg else {
            continue;
        };
        match YMessage::decode_v1(&bytes)? {
            YMessage::Sync(SyncMessage::SyncStep1(server_sv)) => {
                let missing = doc.transact().encode_state_as_update_v1(&server_sv);
                ws.send(binary(YMessage::Sync(SyncMessage::SyncStep2(missing))))
                    .await?;
                answered = true;
            }
            YMessage::Sync(SyncMessage::SyncStep2(update)) => {
                doc.transact_mut()
                    .apply_update(Update::decode_v1(&update)?)?;
                synced = true;
            }
            YMessage::Sync(SyncMessage::Update(update)) => {
                doc.transact_mut()
                    .apply_update(Update::decode_v1(&update)?)?;
            }
            YMessage::Auth(Some(reason)) => anyhow::bail!("y-protocol auth denied: {reason}"),
            _ => {}
        }
    }
    Ok(ws)
}

/// Applies every update to a doc and checks each stamp found by scanning
/// against the value the map now holds for that key.
struct Verifier {
    doc: Doc,
    map: MapRef,
    checked: u64,
    mismatched: u64,
}

impl Verifier {
    fn check(&mut self, update: &[u8], stamps: &[Stamp]) -> anyhow::Result<()> {
        let mut txn = self.doc.transact_mut();
        txn.apply_update(Update::decode_v1(update)?)?;
        for s in stamps {
            let held = match self.map.get(&txn, &key(s.seq)) {
                Some(Out::Any(Any::Buffer(b))) => read_stamp(&b).map(|(h, _)| h),
                _ => None,
            };
            self.checked += 1;
            if held != Some(*s) {
                self.mismatched += 1;
            }
        }
        Ok(())
    }
}

pub struct YReader {
    verifier: Option<Verifier>,
}

impl Reader for YReader {
    fn read(&mut self, msg: &Message, out: &mut Received) -> anyhow::Result<()> {
        let Message::Binary(bytes) = msg else {
            return Ok(());
        };
        if let YMessage::Sync(SyncMessage::Update(update) | SyncMessage::SyncStep2(update)) =
            YMessage::decode_v1(bytes)?
        {
            let first = out.stamps.len();
            scan_stamps(&update, &mut out.stamps);
            if let Some(v) = &mut self.verifier {
                v.check(&update, &out.stamps[first..])?;
            }
        }
        Ok(())
    }

    fn verdict(&self) -> Option<String> {
        self.verifier.as_ref().map(|v| {
            format!(
                "yrs doc check: {} of {} payloads match the map",
                v.checked - v.mismatched,
                v.checked
            )
        })
    }
}

/// A subscriber: a fresh empty doc, synced; `verify` keeps the doc and
/// applies every update to it.
pub async fn subscriber(url: &str, verify: bool) -> anyhow::Result<Conn> {
    let doc = Doc::new();
    let map = doc.get_or_insert_map("bench");
    let ws = connect(url, &doc).await?;
    let verifier = verify.then_some(Verifier {
        doc,
        map,
        checked: 0,
        mismatched: 0,
    });
    Ok(Conn {
        ws,
        reader: Box::new(YReader { verifier }),
    })
}

/// Sets one map key per payload; each batch is one transaction, one update.
struct YWriter {
    doc: Doc,
    map: MapRef,
}

impl Writer for YWriter {
    fn messages(&mut self, payloads: Vec<Vec<u8>>) -> anyhow::Result<Vec<Message>> {
        let mut out = Vec::new();
        let mut payloads = payloads.into_iter().peekable();
        while payloads.peek().is_some() {
            let mut txn = self.doc.transact_mut();
            let (mut bytes, mut count) = (0, 0);
            while let Some(p) = payloads.next_if(|p| {
                count == 0 || (bytes + p.len() <= UPDATE_BUDGET && count < KEYS as usize)
            }) {
                let seq = read_stamp(&p).map(|(s, _)| s.seq).unwrap_or(0);
                bytes += p.len();
                count += 1;
                self.map
                    .insert(&mut txn, key(seq), Any::Buffer(Arc::from(p)));
            }
            let update = txn.encode_update_v1();
            drop(txn);
            out.push(binary(YMessage::Sync(SyncMessage::Update(update))));
        }
        Ok(out)
    }
}

/// The publisher's socket also receives its own updates back; they are read
/// and dropped.
struct Echoes;

impl Reader for Echoes {
    fn read(&mut self, _msg: &Message, _out: &mut Received) -> anyhow::Result<()> {
        Ok(())
    }
}

pub async fn publisher(url: &str) -> anyhow::Result<PubConn> {
    let doc = Doc::new();
    let map = doc.get_or_insert_map("bench");
    let ws = connect(url, &doc).await?;
    Ok(PubConn {
        ws,
        writer: Box::new(YWriter { doc, map }),
        reader: Box::new(Echoes),
    })
}
