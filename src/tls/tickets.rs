//! `[tls] ticket_keys`: session ticket keys shared by every instance, so that a client that
//! got a ticket from one resumes on any other (KB937480's lesson, taken to its end: no
//! session affinity anywhere). The file holds one key per line, 64 hex digits (32 bytes),
//! the newest first; the newest encrypts, every one listed decrypts, so a rotation that puts
//! a fresh key first and keeps the previous ones breaks no session. `cgigate ticket-keys
//! rotate FILE` writes it ([`rotate`]).
//!
//! A ticket is `key id (8) || nonce (12) || ChaCha20-Poly1305(state) || tag (16)`, the id
//! (the first 8 bytes of SHA-256 of the key) as the associated data. rustls puts the
//! creation time inside the state and checks the age itself.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// Bytes of one key.
const KEY_LEN: usize = 32;
/// Bytes of a key's id at the front of a ticket.
const ID_LEN: usize = 8;
/// The keys a rotation keeps: the fresh one and the two before it.
pub(crate) const KEPT: usize = 3;
/// What clients are told a ticket is good for: rotate at least this often.
const LIFETIME_SECS: u32 = 12 * 60 * 60;

/// One key and its id.
struct TicketKey {
    id: [u8; ID_LEN],
    key: LessSafeKey,
}

/// The rustls ticketer over the keys of a `ticket_keys` file.
pub(crate) struct SharedTickets {
    /// Newest first; never empty.
    keys: Vec<TicketKey>,
    rng: SystemRandom,
}

impl fmt::Debug for SharedTickets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ids only: key material never reaches a log.
        let ids: Vec<String> = self.keys.iter().map(|k| hex(&k.id)).collect();
        f.debug_struct("SharedTickets").field("ids", &ids).finish()
    }
}

impl SharedTickets {
    /// The keys of the file at `path`, which must be readable by its owner only.
    pub(crate) fn load(path: &Path) -> Result<SharedTickets, String> {
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "readable or writable by others (mode {:o}): it holds secrets; chmod 600 it",
                meta.permissions().mode() & 0o777
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        SharedTickets::from_keys(&parse(&text)?)
    }

    fn from_keys(raw: &[[u8; KEY_LEN]]) -> Result<SharedTickets, String> {
        if raw.is_empty() {
            return Err("no key in the file".to_string());
        }
        let keys = raw
            .iter()
            .map(|bytes| {
                let key = UnboundKey::new(&CHACHA20_POLY1305, bytes)
                    .map_err(|_| "a key ring refuses".to_string())?;
                Ok(TicketKey {
                    id: key_id(bytes),
                    key: LessSafeKey::new(key),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(SharedTickets {
            keys,
            rng: SystemRandom::new(),
        })
    }
}

impl rustls::server::ProducesTickets for SharedTickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        LIFETIME_SECS
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let newest = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut sealed = plain.to_vec();
        newest
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&newest.id),
                &mut sealed,
            )
            .ok()?;
        let mut ticket = Vec::with_capacity(ID_LEN + NONCE_LEN + sealed.len());
        ticket.extend_from_slice(&newest.id);
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(&sealed);
        Some(ticket)
    }

    /// `cipher` comes from the client: every length is checked, nothing panics.
    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let (id, rest) = cipher.split_at_checked(ID_LEN)?;
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN)?;
        let key = self.keys.iter().find(|k| k.id == id)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = sealed.to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(&key.id), &mut data)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// A key's id: the first bytes of its SHA-256.
fn key_id(key: &[u8; KEY_LEN]) -> [u8; ID_LEN] {
    let digest = ring::digest::digest(&ring::digest::SHA256, key);
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&digest.as_ref()[..ID_LEN]);
    id
}

/// The keys of a file's text: one per line, 64 hex digits; blank lines and `#` comments
/// are skipped.
pub(crate) fn parse(text: &str) -> Result<Vec<[u8; KEY_LEN]>, String> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = unhex(line)
            .ok_or_else(|| format!("line {}: a key is 64 hex digits (32 bytes)", n + 1))?;
        keys.push(key);
    }
    Ok(keys)
}

fn unhex(text: &str) -> Option<[u8; KEY_LEN]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * KEY_LEN {
        return None;
    }
    let mut key = [0u8; KEY_LEN];
    for (out, pair) in key.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |b: u8| char::from(b).to_digit(16);
        *out = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(key)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `cgigate ticket-keys rotate FILE`: put a fresh key first and keep the newest [`KEPT`],
/// creating the file (mode 0600) if there is none. The file is replaced whole (a new file
/// renamed over it), so an instance never reads half of it. Returns how many keys it holds.
pub fn rotate(path: &Path) -> Result<usize, String> {
    let mut keys = match std::fs::read_to_string(path) {
        Ok(text) => parse(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.to_string()),
    };
    let mut fresh = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut fresh)
        .map_err(|_| "no random bytes from the system".to_string())?;
    keys.insert(0, fresh);
    keys.truncate(KEPT);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
    // NamedTempFile is created 0600 already; said again, as it is the point.
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    let mut text =
        String::from("# cgigate TLS ticket keys, newest first (cgigate ticket-keys rotate)\n");
    for key in &keys {
        text.push_str(&hex(key));
        text.push('\n');
    }
    file.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    file.as_file().sync_all().map_err(|e| e.to_string())?;
    file.persist(path).map_err(|e| e.error.to_string())?;
    Ok(keys.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ProducesTickets;

    fn key(b: u8) -> [u8; KEY_LEN] {
        [b; KEY_LEN]
    }

    #[test]
    fn the_newest_key_encrypts_and_every_key_decrypts() {
        let old = SharedTickets::from_keys(&[key(1)]).unwrap();
        let rotated = SharedTickets::from_keys(&[key(2), key(1)]).unwrap();
        let from_old = old.encrypt(b"session state").unwrap();
        assert_eq!(rotated.decrypt(&from_old).unwrap(), b"session state");
        let from_new = rotated.encrypt(b"newer").unwrap();
        assert_eq!(&from_new[..ID_LEN], &key_id(&key(2)));
        assert_eq!(
            old.decrypt(&from_new),
            None,
            "the old instance lacks the new key"
        );
        // Two tickets of the same state differ (fresh nonces).
        assert_ne!(rotated.encrypt(b"x"), rotated.encrypt(b"x"));
    }

    #[test]
    fn forged_cut_and_foreign_tickets_are_refused() {
        let t = SharedTickets::from_keys(&[key(7)]).unwrap();
        let good = t.encrypt(b"state").unwrap();
        for n in 0..good.len() {
            assert_eq!(t.decrypt(&good[..n]), None, "cut at {n}");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 1;
            assert_eq!(t.decrypt(&bad), None, "flipped byte {i}");
        }
        let other = SharedTickets::from_keys(&[key(8)]).unwrap();
        assert_eq!(other.decrypt(&good), None);
        assert_eq!(t.decrypt(&[]), None);
    }

    #[test]
    fn key_files_parse_strictly() {
        let k = "00".repeat(32);
        let text = format!("# comment\n\n  {k}  \n{}\n", "aB".repeat(32));
        let keys = parse(&text).unwrap();
        assert_eq!(keys, [[0u8; 32], [0xab; 32]]);
        for (bad, line) in [
            ("0".repeat(63), 1),
            ("0".repeat(65), 1),
            (format!("{k}\nzz{}", "0".repeat(62)), 2),
            (format!("{k} extra"), 1),
        ] {
            let err = parse(&bad).unwrap_err();
            assert!(err.starts_with(&format!("line {line}: ")), "{err}");
        }
        assert!(SharedTickets::from_keys(&[]).is_err());
    }

    #[test]
    fn rotation_puts_a_fresh_key_first_and_keeps_three() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ticket.keys");
        let mut seen = Vec::new();
        for round in 1..=5 {
            let kept = rotate(&path).unwrap();
            assert_eq!(kept, round.min(KEPT));
            let keys = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(keys.len(), kept);
            assert!(!seen.contains(&keys[0]), "a fresh key");
            if let Some(previous) = seen.last() {
                assert_eq!(&keys[1], previous, "the previous newest is second");
            }
            seen.push(keys[0]);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            assert!(SharedTickets::load(&path).is_ok());
        }
        // A file others can read is refused, saying why.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SharedTickets::load(&path).unwrap_err();
        assert!(err.contains("chmod 600"), "{err}");
        // A file that is not a key file is left alone.
        std::fs::write(&path, "not keys\n").unwrap();
        assert!(rotate(&path).unwrap_err().starts_with("line 1"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not keys\n");
    }
}
