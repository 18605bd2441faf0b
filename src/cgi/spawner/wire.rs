//! The spawn helper's messages, encoded by hand: one `SOCK_SEQPACKET` datagram each, so a
//! message is never split or merged and needs no outer length. Integers are little-endian;
//! byte strings are a u32 length and the bytes. Decoding checks every length against what
//! is left and never panics: a malformed message is an error, nothing more.

use std::fmt;

/// Largest spawn request (program, argv, folder and environment). `max_head_bytes` may be
/// up to 1 MiB and most of a head ends up in the environment; what does not fit is spawned
/// directly by the server instead.
pub(crate) const MAX_REQUEST: usize = 2 * 1024 * 1024;
/// Largest reply: a tag and a short message (a helper saying why it cannot serve).
pub(crate) const MAX_REPLY: usize = 1024;
/// Longest reason in an [`Reply::Unusable`].
const MAX_REASON: usize = MAX_REPLY - 8;

const TAG_SPAWNED: u8 = 1;
const TAG_FAILED: u8 = 2;
const TAG_EXITED: u8 = 3;
const TAG_READY: u8 = 4;
const TAG_UNUSABLE: u8 = 5;

const TAG_SPAWN: u8 = 1;
const TAG_SIGNAL: u8 = 2;
const TAG_START_HELPER: u8 = 3;

/// What the server asks of a helper (and of the supervisor, which only starts helpers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// Start a program (with three descriptors).
    Spawn(Request),
    /// Send `signal` to the process group `pgid`, one the helper started (its scripts may
    /// run as a user the server cannot signal).
    Signal {
        /// The group.
        pgid: i32,
        /// The signal number.
        signal: i32,
    },
    /// Supervisor only: start a helper for profile number `profile` (for scripts owned by
    /// `owner`, on a route that runs them as their owner), serving the one descriptor sent
    /// with this message.
    StartHelper {
        /// Echoed in the reply.
        id: u64,
        /// Index into the supervisor's table of profiles.
        profile: u32,
        /// The owner's uid, for a run-as-owner profile.
        owner: Option<u32>,
    },
}

impl Command {
    /// The command in `buf`, which must hold exactly one.
    pub(crate) fn decode(buf: &[u8]) -> Result<Command, Malformed> {
        let (&tag, rest) = buf.split_first().ok_or(Malformed)?;
        match tag {
            TAG_SPAWN => Request::decode_body(rest).map(Command::Spawn),
            TAG_SIGNAL => {
                let mut r = Reader(rest);
                let command = Command::Signal {
                    pgid: r.i32()?,
                    signal: r.i32()?,
                };
                r.end()?;
                Ok(command)
            }
            TAG_START_HELPER => {
                let mut r = Reader(rest);
                let id = r.u64()?;
                let profile = u32::from_le_bytes(r.array()?);
                let owner = match r.array::<1>()? {
                    [0] => None,
                    [1] => Some(u32::from_le_bytes(r.array()?)),
                    _ => return Err(Malformed),
                };
                r.end()?;
                Ok(Command::StartHelper { id, profile, owner })
            }
            _ => Err(Malformed),
        }
    }

    /// The datagram of a command other than a spawn (see [`encode_request`] for those).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        match self {
            Command::Spawn(r) => return r.encode_owned(),
            Command::Signal { pgid, signal } => {
                out.push(TAG_SIGNAL);
                out.extend_from_slice(&pgid.to_le_bytes());
                out.extend_from_slice(&signal.to_le_bytes());
            }
            Command::StartHelper { id, profile, owner } => {
                out.push(TAG_START_HELPER);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&profile.to_le_bytes());
                match owner {
                    None => out.push(0),
                    Some(uid) => {
                        out.push(1);
                        out.extend_from_slice(&uid.to_le_bytes());
                    }
                }
            }
        }
        out
    }

    /// The id to answer a command with when it does not decode as a whole.
    pub(crate) fn peek_id(buf: &[u8]) -> Option<u64> {
        match buf.split_first() {
            Some((&(TAG_SPAWN | TAG_START_HELPER), rest)) => Reader(rest).u64().ok(),
            _ => None,
        }
    }
}

/// Start a program; the datagram carries exactly three descriptors: stdin, stdout, stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// Echoed in the reply.
    pub id: u64,
    /// The program (a path, or a bare name looked up in the new environment's PATH).
    pub program: Vec<u8>,
    /// argv\[1..].
    pub args: Vec<Vec<u8>>,
    /// The working directory.
    pub dir: Vec<u8>,
    /// The whole environment.
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What the helper (or the supervisor) says back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Request `id` runs as `pid` (also its process group).
    Spawned {
        /// The request.
        id: u64,
        /// The child.
        pid: i32,
    },
    /// Request `id` could not be started: the errno.
    Failed {
        /// The request.
        id: u64,
        /// `raw_os_error` of the spawn.
        errno: i32,
    },
    /// A child the helper started was reaped; `status` is the raw wait status.
    Exited {
        /// The child.
        pid: i32,
        /// As `waitpid` reports it (`ExitStatusExt::from_raw` rebuilds it).
        status: i32,
    },
    /// A helper's first message: it applied its profile and serves. `sandbox` says how
    /// much of a sandbox the kernel enforces: 0 none (or none asked for), 1 part, 2 all.
    Ready {
        /// The sandbox's state.
        sandbox: u8,
    },
    /// A helper's first and last message: it cannot apply its profile, and why.
    Unusable {
        /// The reason, for the server's log and start-up error.
        reason: String,
    },
}

/// A message that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed spawn helper message")
    }
}

impl std::error::Error for Malformed {}

/// The datagram of a [`Request`] whose parts are borrowed, so that the server encodes an
/// environment straight from where it lives: one copy of it per spawn, not two.
pub(crate) fn encode_request<'a, A, E>(
    id: u64,
    program: &[u8],
    args: A,
    dir: &[u8],
    env: E,
) -> Vec<u8>
where
    A: ExactSizeIterator<Item = &'a [u8]> + Clone,
    E: ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    let env_len: usize = env.clone().map(|(k, v)| k.len() + v.len() + 8).sum();
    let args_len: usize = args.clone().map(|a| a.len() + 4).sum();
    let mut out = Vec::with_capacity(25 + program.len() + dir.len() + args_len + env_len);
    out.push(TAG_SPAWN);
    out.extend_from_slice(&id.to_le_bytes());
    put_bytes(&mut out, program);
    put_count(&mut out, args.len());
    for a in args {
        put_bytes(&mut out, a);
    }
    put_bytes(&mut out, dir);
    put_count(&mut out, env.len());
    for (k, v) in env {
        put_bytes(&mut out, k);
        put_bytes(&mut out, v);
    }
    out
}

impl Request {
    /// The datagram.
    pub(crate) fn encode_owned(&self) -> Vec<u8> {
        encode_request(
            self.id,
            &self.program,
            self.args.iter().map(Vec::as_slice),
            &self.dir,
            self.env.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        )
    }

    /// The request after its tag.
    fn decode_body(buf: &[u8]) -> Result<Request, Malformed> {
        let mut r = Reader(buf);
        let id = r.u64()?;
        let program = r.bytes()?.to_vec();
        let args = (0..r.count()?)
            .map(|_| r.bytes().map(<[u8]>::to_vec))
            .collect::<Result<_, _>>()?;
        let dir = r.bytes()?.to_vec();
        let env = (0..r.count()?)
            .map(|_| Ok((r.bytes()?.to_vec(), r.bytes()?.to_vec())))
            .collect::<Result<_, _>>()?;
        r.end()?;
        Ok(Request {
            id,
            program,
            args,
            dir,
            env,
        })
    }
}

impl Reply {
    /// The datagram.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        match *self {
            Reply::Spawned { id, pid } => {
                out.push(TAG_SPAWNED);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&pid.to_le_bytes());
            }
            Reply::Failed { id, errno } => {
                out.push(TAG_FAILED);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&errno.to_le_bytes());
            }
            Reply::Exited { pid, status } => {
                out.push(TAG_EXITED);
                out.extend_from_slice(&pid.to_le_bytes());
                out.extend_from_slice(&status.to_le_bytes());
            }
            Reply::Ready { sandbox } => {
                out.push(TAG_READY);
                out.push(sandbox);
            }
            Reply::Unusable { ref reason } => {
                out.push(TAG_UNUSABLE);
                let mut end = reason.len().min(MAX_REASON);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                put_bytes(&mut out, reason.get(..end).unwrap_or_default().as_bytes());
            }
        }
        out
    }

    /// The reply in `buf`, which must hold exactly one.
    pub(crate) fn decode(buf: &[u8]) -> Result<Reply, Malformed> {
        let (&tag, rest) = buf.split_first().ok_or(Malformed)?;
        let mut r = Reader(rest);
        let reply = match tag {
            TAG_SPAWNED => Reply::Spawned {
                id: r.u64()?,
                pid: r.i32()?,
            },
            TAG_FAILED => Reply::Failed {
                id: r.u64()?,
                errno: r.i32()?,
            },
            TAG_EXITED => Reply::Exited {
                pid: r.i32()?,
                status: r.i32()?,
            },
            TAG_READY => Reply::Ready {
                sandbox: r.array::<1>()?[0],
            },
            TAG_UNUSABLE => Reply::Unusable {
                reason: String::from_utf8_lossy(r.bytes()?).into_owned(),
            },
            _ => return Err(Malformed),
        };
        r.end()?;
        Ok(reply)
    }
}

fn put_count(out: &mut Vec<u8>, n: usize) {
    // Every length is bounded by MAX_REQUEST long before u32 overflows; saturate anyway so
    // an absurd input fails to decode instead of wrapping.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_count(out, b.len());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        self.take(N)?.try_into().map_err(|_| Malformed)
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        self.array().map(u64::from_le_bytes)
    }

    fn i32(&mut self) -> Result<i32, Malformed> {
        self.array().map(i32::from_le_bytes)
    }

    /// A count of items that follow; each takes at least 4 bytes, so a count larger than
    /// what is left cannot be honest (and must not size an allocation).
    fn count(&mut self) -> Result<usize, Malformed> {
        let n = usize::try_from(u32::from_le_bytes(self.array()?)).map_err(|_| Malformed)?;
        if n > self.0.len() / 4 {
            return Err(Malformed);
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let n = usize::try_from(u32::from_le_bytes(self.array()?)).map_err(|_| Malformed)?;
        self.take(n)
    }

    fn end(&self) -> Result<(), Malformed> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Malformed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Request {
        Request {
            id: 0x0102_0304_0506_0708,
            program: b"/usr/bin/python3".to_vec(),
            args: vec![b"/srv/cgi/x.py".to_vec(), Vec::new()],
            dir: b"/srv/cgi".to_vec(),
            env: vec![
                (b"PATH".to_vec(), b"/usr/bin:/bin".to_vec()),
                (b"QUERY_STRING".to_vec(), b"a=\xff\x00b".to_vec()),
                (b"EMPTY".to_vec(), Vec::new()),
            ],
        }
    }

    #[test]
    fn requests_round_trip() {
        let r = sample();
        assert_eq!(
            Command::decode(&r.encode_owned()),
            Ok(Command::Spawn(r.clone()))
        );
        assert_eq!(Command::peek_id(&r.encode_owned()), Some(r.id));
        let empty = Request {
            id: 0,
            program: Vec::new(),
            args: Vec::new(),
            dir: Vec::new(),
            env: Vec::new(),
        };
        assert_eq!(
            Command::decode(&empty.encode_owned()),
            Ok(Command::Spawn(empty))
        );
        for c in [
            Command::Signal {
                pgid: 77,
                signal: 15,
            },
            Command::StartHelper {
                id: 3,
                profile: 1,
                owner: None,
            },
            Command::StartHelper {
                id: 4,
                profile: 0,
                owner: Some(1000),
            },
        ] {
            assert_eq!(Command::decode(&c.encode()), Ok(c.clone()));
        }
        assert_eq!(
            Command::peek_id(
                &Command::StartHelper {
                    id: 9,
                    profile: 0,
                    owner: None
                }
                .encode()
            ),
            Some(9)
        );
        assert_eq!(
            Command::peek_id(&Command::Signal { pgid: 1, signal: 9 }.encode()),
            None
        );
    }

    #[test]
    fn replies_round_trip() {
        for r in [
            Reply::Spawned { id: 7, pid: 4242 },
            Reply::Failed {
                id: u64::MAX,
                errno: 2,
            },
            Reply::Exited {
                pid: i32::MAX,
                status: 0x0f00,
            },
            Reply::Exited { pid: 1, status: -1 },
            Reply::Ready { sandbox: 2 },
            Reply::Unusable {
                reason: "landlock: not supported".into(),
            },
            Reply::Unusable {
                reason: "é".repeat(MAX_REPLY),
            },
        ] {
            let bytes = r.encode();
            assert!(bytes.len() <= MAX_REPLY);
            let back = Reply::decode(&bytes).unwrap();
            match (&r, &back) {
                (Reply::Unusable { reason: a }, Reply::Unusable { reason: b }) => {
                    assert!(a.starts_with(b.as_str()) && !b.is_empty());
                }
                _ => assert_eq!(back, r),
            }
        }
    }

    #[test]
    fn every_truncation_and_extension_is_an_error() {
        let bytes = sample().encode_owned();
        for n in 0..bytes.len() {
            assert_eq!(Command::decode(&bytes[..n]), Err(Malformed), "cut at {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Command::decode(&longer), Err(Malformed));
        let reply = Reply::Spawned { id: 1, pid: 2 }.encode();
        for n in 0..reply.len() {
            assert_eq!(Reply::decode(&reply[..n]), Err(Malformed), "cut at {n}");
        }
        assert_eq!(Reply::decode(&[9, 0, 0, 0, 0, 0, 0, 0, 0]), Err(Malformed));
    }

    #[test]
    fn garbage_never_panics() {
        // Huge counts and lengths, and a cheap pseudo-random walk over byte patterns.
        let mut huge = vec![TAG_SPAWN];
        huge.extend_from_slice(&1u64.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Command::decode(&huge), Err(Malformed));
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..200usize {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed & 0xff) as u8
                })
                .collect();
            let _ = Command::decode(&buf);
            let _ = Reply::decode(&buf);
        }
        // Flipping any single byte of a good request either decodes or errs, never panics.
        let bytes = sample().encode_owned();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = Command::decode(&b);
        }
    }
}
