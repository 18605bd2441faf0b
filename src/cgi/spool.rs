//! Spooling a request body for a CGI (SPEC §5.3 `request_body = "spool"`): the whole body,
//! de-chunked, in memory up to `spool_memory`, beyond that in an unnamed temporary file that
//! becomes the script's stdin as is. The script then knows CONTENT_LENGTH, which php-cgi
//! needs for chunked uploads.

use std::io::{Seek, SeekFrom};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::handler::{Body, HandlerError};

/// A spooled body.
pub(crate) enum Spooled {
    /// Held in memory.
    Memory(Vec<Bytes>, u64),
    /// In a temporary file (already deleted from the file system), positioned at its start.
    File(std::fs::File, u64),
}

impl Spooled {
    /// Body length in bytes.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Spooled::Memory(_, n) | Spooled::File(_, n) => *n,
        }
    }
}

/// Read the whole body; `memory` bytes at most are held in memory.
pub(crate) async fn spool(body: &mut Body, memory: usize) -> Result<Spooled, HandlerError> {
    let mut pieces = Vec::new();
    let mut len: u64 = 0;
    while let Some(piece) = body.read().await? {
        len += piece.len() as u64;
        pieces.push(piece);
        if len > memory as u64 {
            return to_file(body, pieces, len).await;
        }
    }
    Ok(Spooled::Memory(pieces, len))
}

async fn to_file(body: &mut Body, held: Vec<Bytes>, mut len: u64) -> Result<Spooled, HandlerError> {
    let file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|e| HandlerError::Other(format!("spool task: {e}")))??;
    let mut file = tokio::fs::File::from_std(file);
    for piece in held {
        file.write_all(&piece).await?;
    }
    while let Some(piece) = body.read().await? {
        len += piece.len() as u64;
        file.write_all(&piece).await?;
    }
    file.flush().await?;
    let mut file = file.into_std().await;
    file.seek(SeekFrom::Start(0))?;
    Ok(Spooled::File(file, len))
}
