//! Identifiers: random client ids and short, typeable entity ids.

use spoke_relay::proto::ClientId;

/// Crockford-style base32 without look-alike letters, lowercase for typing.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Random bytes from the operating system. Failure here means the OS cannot
/// provide entropy at all, which no caller can work around.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if let Err(err) = getrandom::fill(&mut buf) {
        panic!("the operating system's random number source failed: {err}");
    }
    buf
}

pub fn new_client_id() -> ClientId {
    ClientId(u64::from_le_bytes(random_bytes::<8>()))
}

/// A new entity id such as `b-7k2m9q3x`: a kind prefix and 8 base32
/// characters (40 random bits), short enough to type and unlikely to collide
/// within one hub.
pub fn new_entity_id(prefix: &str) -> String {
    let bytes = random_bytes::<5>();
    let mut bits = 0u64;
    for b in bytes {
        bits = (bits << 8) | u64::from(b);
    }
    let mut id = String::with_capacity(prefix.len() + 9);
    id.push_str(prefix);
    id.push('-');
    for i in (0..8).rev() {
        id.push(ALPHABET[((bits >> (i * 5)) & 31) as usize] as char);
    }
    id
}

/// Lowercase hex of a byte slice.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids_have_prefix_and_typeable_characters() {
        let id = new_entity_id("b");
        assert_eq!(id.len(), 10);
        assert!(id.starts_with("b-"));
        assert!(id[2..].bytes().all(|c| ALPHABET.contains(&c)));
        assert_ne!(new_entity_id("b"), new_entity_id("b"));
    }

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[0x0a, 0x84, 0xff]), "0a84ff");
    }
}
