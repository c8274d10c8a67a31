//! Reading and writing backup files: the lines of `format.rs` to and from disk, with progress.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};

use super::format::{Decoder, Encoder, Header, Line, Verified};
use super::{BackupError, BackupResult, OnProgress, Progress};

/// Rows between two progress reports of the same table.
const PROGRESS_EVERY: u64 = 50_000;

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_path_buf();
    move |source| BackupError::Io { what, path, source }
}

/// A backup being written: to `FILE.partial` beside the destination, renamed to it once the
/// trailer is on disk, so that the destination is only ever a complete backup (or the older
/// one it replaces).
pub struct BackupWriter<'p> {
    out: BufWriter<tokio::fs::File>,
    path: PathBuf,
    partial: PathBuf,
    encoder: Option<Encoder>,
    header: Option<Header>,
    bytes: u64,
    progress: OnProgress<'p>,
    renamed: bool,
}

impl<'p> BackupWriter<'p> {
    pub async fn create(path: &Path, progress: OnProgress<'p>) -> BackupResult<BackupWriter<'p>> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = tokio::fs::File::create(&partial)
            .await
            .map_err(io_error("create", &partial))?;
        Ok(BackupWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
            partial,
            encoder: None,
            header: None,
            bytes: 0,
            progress,
            renamed: false,
        })
    }

    async fn write(&mut self, line: &str) -> BackupResult<()> {
        self.bytes += line.len() as u64;
        let partial = &self.partial;
        self.out
            .write_all(line.as_bytes())
            .await
            .map_err(io_error("write", partial))
    }

    /// The header: first, once.
    pub async fn header(&mut self, header: &Header) -> BackupResult<()> {
        assert!(self.encoder.is_none(), "one header per backup");
        let (encoder, line) = Encoder::new(header);
        self.encoder = Some(encoder);
        self.header = Some(header.clone());
        self.write(&line).await
    }

    /// One row; rows come table by table in the header's order.
    pub async fn row(&mut self, table: &str, row: &Map<String, Value>) -> BackupResult<()> {
        let encoder = self.encoder.as_mut().expect("the header comes first");
        let line = encoder.row(table, row);
        let rows = encoder.rows()[table];
        self.write(&line).await?;
        if rows.is_multiple_of(PROGRESS_EVERY) {
            (self.progress)(Progress {
                table,
                rows,
                done: false,
            });
        }
        Ok(())
    }

    /// Every row of `table` was written.
    pub fn end_table(&mut self, table: &str) {
        let rows = self.encoder.as_ref().map_or(0, |e| e.rows()[table]);
        (self.progress)(Progress {
            table,
            rows,
            done: true,
        });
    }

    /// Writes the trailer, syncs the file to disk and renames it into place: the verified
    /// summary of what was written.
    pub async fn finish(mut self) -> BackupResult<(Verified, u64)> {
        let encoder = self.encoder.take().expect("the header comes first");
        let rows = encoder.rows().clone();
        let (line, sha256) = encoder.finish();
        self.write(&line).await?;
        let partial = self.partial.clone();
        self.out
            .flush()
            .await
            .map_err(io_error("write", &partial))?;
        self.out
            .get_ref()
            .sync_all()
            .await
            .map_err(io_error("sync", &partial))?;
        tokio::fs::rename(&partial, &self.path)
            .await
            .map_err(io_error("rename into place", &self.path))?;
        self.renamed = true;
        // The rename itself is durable once the folder is synced.
        if let Some(folder) = self.path.parent().filter(|f| !f.as_os_str().is_empty()) {
            if let Ok(dir) = tokio::fs::File::open(folder).await {
                let _ = dir.sync_all().await;
            }
        }
        let header = self.header.take().expect("the header comes first");
        Ok((
            Verified {
                header,
                rows,
                sha256,
            },
            self.bytes,
        ))
    }
}

impl Drop for BackupWriter<'_> {
    /// A backup that did not finish leaves no file behind.
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// A backup being read: every line goes through the decoder, so a row is handed out only from
/// a file that has been well-formed so far, and the end is reached only when its trailer
/// matched.
pub struct BackupReader<'p> {
    input: BufReader<tokio::fs::File>,
    path: PathBuf,
    decoder: Decoder,
    header: Header,
    /// A row read ahead (the first of the next batch).
    pending: Option<(String, Map<String, Value>)>,
    line: String,
    ended: bool,
    progress: OnProgress<'p>,
    /// The table being read and its rows so far.
    current: Option<(String, u64)>,
}

impl<'p> BackupReader<'p> {
    /// Opens a backup and reads its header.
    pub async fn open(path: &Path, progress: OnProgress<'p>) -> BackupResult<BackupReader<'p>> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(io_error("open", path))?;
        let mut reader = BackupReader {
            input: BufReader::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
            decoder: Decoder::new(),
            header: Header::new(
                super::format::Backend::Sqlite,
                0,
                Vec::new(),
                Default::default(),
            ),
            pending: None,
            line: String::new(),
            ended: false,
            progress,
            current: None,
        };
        match reader.next_line().await? {
            Some(Line::Header(header)) => reader.header = *header,
            _ => unreachable!("the first line is a header or an error"),
        }
        Ok(reader)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    fn format_error(&self, source: super::format::FormatError) -> BackupError {
        BackupError::File {
            path: self.path.clone(),
            source,
        }
    }

    async fn next_line(&mut self) -> BackupResult<Option<Line>> {
        self.line.clear();
        let read = self
            .input
            .read_line(&mut self.line)
            .await
            .map_err(io_error("read", &self.path))?;
        if read == 0 {
            let decoder = std::mem::take(&mut self.decoder);
            return match decoder.finish() {
                Ok(_) => Ok(None),
                Err(e) => Err(self.format_error(e)),
            };
        }
        match self.decoder.line(&self.line) {
            Ok(line) => Ok(Some(line)),
            Err(e) => Err(self.format_error(e)),
        }
    }

    /// The next row; `None` once the trailer matched and the file ended there.
    pub async fn next_row(&mut self) -> BackupResult<Option<(String, Map<String, Value>)>> {
        if let Some(row) = self.pending.take() {
            return Ok(Some(row));
        }
        if self.ended {
            return Ok(None);
        }
        loop {
            match self.next_line().await? {
                Some(Line::Row { table, row }) => {
                    self.count(&table);
                    return Ok(Some((table, row)));
                }
                Some(Line::End) => continue,
                Some(Line::Header(_)) => unreachable!("one header, on line 1"),
                None => {
                    self.ended = true;
                    self.report_done();
                    return Ok(None);
                }
            }
        }
    }

    fn count(&mut self, table: &str) {
        match &mut self.current {
            Some((name, rows)) if name == table => *rows += 1,
            _ => {
                self.report_done();
                self.current = Some((table.to_string(), 1));
            }
        }
        let (name, rows) = self.current.as_ref().expect("just set");
        if rows.is_multiple_of(PROGRESS_EVERY) {
            (self.progress)(Progress {
                table: name,
                rows: *rows,
                done: false,
            });
        }
    }

    fn report_done(&mut self) {
        if let Some((table, rows)) = self.current.take() {
            (self.progress)(Progress {
                table: &table,
                rows,
                done: true,
            });
        }
    }

    /// The next rows of one table: up to `max_rows`, and fewer once they hold `max_bytes` of
    /// JSON. `None` once the file ended with a matching trailer.
    pub async fn next_batch(
        &mut self,
        max_rows: usize,
        max_bytes: usize,
    ) -> BackupResult<Option<(String, Vec<Map<String, Value>>)>> {
        let Some((table, first)) = self.next_row().await? else {
            return Ok(None);
        };
        let mut bytes = self.line.len();
        let mut rows = vec![first];
        while rows.len() < max_rows && bytes < max_bytes {
            match self.next_row().await? {
                Some((next, row)) if next == table => {
                    bytes += self.line.len();
                    rows.push(row);
                }
                Some(other) => {
                    self.pending = Some(other);
                    break;
                }
                None => break,
            }
        }
        Ok(Some((table, rows)))
    }
}

/// Reads a whole backup and checks it: header, rows, trailer counts and checksum.
pub async fn verify(path: &Path) -> BackupResult<Verified> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(io_error("open", path))?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut decoder = Decoder::new();
    let mut line = String::new();
    let file_error = |source| BackupError::File {
        path: path.to_path_buf(),
        source,
    };
    loop {
        line.clear();
        let read = input
            .read_line(&mut line)
            .await
            .map_err(io_error("read", path))?;
        if read == 0 {
            return decoder.finish().map_err(file_error);
        }
        decoder.line(&line).map_err(file_error)?;
    }
}
