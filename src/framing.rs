//! Line framing shared by the socket servers: one request per line, with a bound on the line
//! length so that a client cannot make the daemon buffer without limit.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// What [`read_line`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// A line is in the buffer (with its newline, if the stream had one).
    Complete,
    /// The line was longer than the limit; it was read and thrown away, so the next line
    /// starts clean.
    TooLong,
    /// The stream ended.
    End,
}

/// Reads one line of at most `max` bytes into `buf`.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let n = (&mut *reader).take(max as u64 + 1).read_until(b'\n', buf).await?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.last() != Some(&b'\n') && buf.len() > max {
        let mut rest = Vec::new();
        loop {
            rest.clear();
            let n = (&mut *reader).take(max as u64).read_until(b'\n', &mut rest).await?;
            if n == 0 || rest.last() == Some(&b'\n') {
                break;
            }
        }
        return Ok(Line::TooLong);
    }
    Ok(Line::Complete)
}
