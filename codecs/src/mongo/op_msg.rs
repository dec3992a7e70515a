//! OP_MSG (opcode 2013): `uint32 flagBits`, then sections, then an optional CRC-32C.
//!
//! Section kind 0 is the body (exactly one document); kind 1 is a document sequence
//! (`int32 size`, a C-string identifier such as `documents`, then documents up to `size`).

use bson::RawDocument;

use super::reader::Reader;
use super::MessageError;

/// Spec: "The message ends with 4 bytes containing a CRC-32C checksum".
pub const CHECKSUM_PRESENT: u32 = 1 << 0;
/// Spec: "Another message will follow this one without further action from the receiver".
pub const MORE_TO_COME: u32 = 1 << 1;
/// Spec: "The client is prepared for multiple replies to this request using the moreToCome bit".
pub const EXHAUST_ALLOWED: u32 = 1 << 16;

/// Spec: bits 0-15 are required; a receiver must error on one it does not know.
const REQUIRED_MASK: u32 = 0xffff;
const KNOWN_REQUIRED: u32 = CHECKSUM_PRESENT | MORE_TO_COME;

/// A kind 1 document sequence, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Section<'a> {
    pub identifier: &'a str,
    /// The documents, back to back (each already bounds-checked).
    pub payload: &'a [u8],
    pub count: u32,
}

impl<'a> Section<'a> {
    pub fn documents(&self) -> impl Iterator<Item = &'a RawDocument> {
        let mut r = Reader::new(self.payload);
        std::iter::from_fn(move || if r.is_empty() { None } else { r.document("document sequence").ok() })
    }
}

/// The most kind 1 sections one message keeps (drivers send one; more are counted, not kept).
pub const MAX_SEQUENCES: usize = 4;

/// An OP_MSG, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct OpMsg<'a> {
    pub flags: u32,
    pub body: &'a RawDocument,
    pub sequences: [Option<Section<'a>>; MAX_SEQUENCES],
    /// Documents in all kind 1 sections.
    pub sequence_documents: u32,
    pub checksum: Option<u32>,
}

impl<'a> OpMsg<'a> {
    /// `message` is the whole message (header included; the checksum covers it), `body` the
    /// bytes after the header.
    pub fn parse(message: &'a [u8], body: &'a [u8]) -> Result<OpMsg<'a>, MessageError> {
        let mut r = Reader::new(body);
        let flags = r.u32("flagBits")?;
        if flags & REQUIRED_MASK & !KNOWN_REQUIRED != 0 {
            return Err(MessageError::RequiredFlags(flags & REQUIRED_MASK & !KNOWN_REQUIRED));
        }
        let mut checksum = None;
        let mut sections = r.rest();
        if flags & CHECKSUM_PRESENT != 0 {
            let split = sections.len().checked_sub(4).ok_or(MessageError::Overrun("checksum"))?;
            let (s, c) = sections.split_at(split);
            let expected = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            // Spec: the checksum covers every byte of the message before it, header included.
            let covered = &message[..message.len() - 4];
            let actual = crc32c::crc32c(covered);
            if actual != expected {
                return Err(MessageError::Checksum { expected, actual });
            }
            checksum = Some(expected);
            sections = s;
        }
        let mut r = Reader::new(sections);
        let mut body_doc = None;
        let mut sequences = [None; MAX_SEQUENCES];
        let (mut kept, mut sequence_documents) = (0usize, 0u32);
        while !r.is_empty() {
            match r.u8("section kind")? {
                0 => {
                    let d = r.document("body section")?;
                    if body_doc.replace(d).is_some() {
                        return Err(MessageError::TwoBodies);
                    }
                }
                1 => {
                    let size = r.i32("document sequence size")?;
                    // The size counts itself.
                    let len = usize::try_from(size).ok().and_then(|s| s.checked_sub(4));
                    let len = len.ok_or(MessageError::Overrun("document sequence"))?;
                    let mut seq = Reader::new(r.bytes(len, "document sequence")?);
                    let identifier = seq.cstring("document sequence identifier")?;
                    let payload = seq.rest();
                    let mut count = 0u32;
                    while !seq.is_empty() {
                        seq.document("document sequence")?;
                        count += 1;
                    }
                    sequence_documents = sequence_documents.saturating_add(count);
                    if let Some(slot) = sequences.get_mut(kept) {
                        *slot = Some(Section { identifier, payload, count });
                        kept += 1;
                    }
                }
                k => return Err(MessageError::SectionKind(k)),
            }
        }
        let body = body_doc.ok_or(MessageError::NoBody)?;
        Ok(OpMsg { flags, body, sequences, sequence_documents, checksum })
    }

    pub fn more_to_come(&self) -> bool {
        self.flags & MORE_TO_COME != 0
    }

    pub fn exhaust_allowed(&self) -> bool {
        self.flags & EXHAUST_ALLOWED != 0
    }

    /// The kind 1 section called `identifier` (`documents`, `updates`, `deletes`).
    pub fn sequence(&self, identifier: &str) -> Option<&Section<'a>> {
        self.sequences.iter().flatten().find(|s| s.identifier == identifier)
    }
}

/// Encodes an OP_MSG body (tests, benchmarks, fuzz seeds): header, flags, a kind 0 body, kind
/// 1 sections, and the CRC-32C when `flags` asks for it.
pub fn encode(request_id: i32, response_to: i32, flags: u32, body: &[u8], sequences: &[(&str, &[&[u8]])]) -> Vec<u8> {
    let mut out = vec![0u8; super::HEADER_LEN];
    out.extend_from_slice(&flags.to_le_bytes());
    out.push(0);
    out.extend_from_slice(body);
    for (id, docs) in sequences {
        out.push(1);
        let size = 4 + id.len() + 1 + docs.iter().map(|d| d.len()).sum::<usize>();
        out.extend_from_slice(&(size as i32).to_le_bytes());
        out.extend_from_slice(id.as_bytes());
        out.push(0);
        for d in *docs {
            out.extend_from_slice(d);
        }
    }
    let total = out.len() + if flags & CHECKSUM_PRESENT != 0 { 4 } else { 0 };
    let header = super::Header { message_length: total as i32, request_id, response_to, op_code: 2013 };
    out[..super::HEADER_LEN].copy_from_slice(&header.encode());
    if flags & CHECKSUM_PRESENT != 0 {
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
    }
    out
}
