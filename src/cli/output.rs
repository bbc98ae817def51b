//! Where a command's output goes, for every command that writes one: the format the `-o`
//! file's name asks for, the refusal to write over an input capture, and the atomic file
//! (a temporary file in the target's directory, renamed over the target when complete, so
//! a reader never sees half an output and a failed run leaves the target untouched).
//!
//! It knows paths and bytes, never what is written.

use closewait_core::capture::InputSpec;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// An output that could not be written: the file (or `standard output`) and why.
#[derive(Debug)]
pub struct OutputError {
    pub path: String,
    pub error: io::Error,
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.error)
    }
}

impl std::error::Error for OutputError {}

/// The formats a command writes and the `-o` extensions that ask for each.
pub struct OutputFormats<F: 'static> {
    /// The command, for messages (`chart`).
    pub command: &'static str,
    /// Lower-case extensions and the format each asks for.
    pub by_extension: &'static [(&'static str, F)],
    /// Written to standard output, or to a file name without an extension.
    pub default: F,
    /// The option that chooses a format whatever the file name (`--format`).
    pub option: &'static str,
}

/// `-o` names a file whose extension is no format the command writes.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownExtension(String);

impl fmt::Display for UnknownExtension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnknownExtension {}

impl<F: Copy> OutputFormats<F> {
    /// The format to write: `explicit` (from `--format`) whatever the file is called; else
    /// the one the `-o` file's extension asks for, or the default for standard output (`-`
    /// or no `-o`) and a name without an extension. An extension that names none of the
    /// command's formats (`chart -o x.jpg`) is refused rather than filled with another
    /// format.
    pub fn choose(
        &self,
        explicit: Option<F>,
        output: Option<&Path>,
    ) -> Result<F, UnknownExtension> {
        if let Some(f) = explicit {
            return Ok(f);
        }
        let Some(path) = output.filter(|p| p.as_os_str() != "-") else {
            return Ok(self.default);
        };
        let Some(ext) = path.extension() else {
            return Ok(self.default);
        };
        let ext = ext.to_string_lossy().to_ascii_lowercase();
        if let Some((_, f)) = self.by_extension.iter().find(|(e, _)| *e == ext) {
            return Ok(*f);
        }
        let accepted: Vec<String> = self
            .by_extension
            .iter()
            .map(|(e, _)| format!(".{e}"))
            .collect();
        Err(UnknownExtension(format!(
            "{}: {} does not write .{ext} files; name the output {} (or give {} to write one \
             of its formats under this name)",
            path.display(),
            self.command,
            accepted.join(", "),
            self.option
        )))
    }
}

/// `-o` naming one of the inputs would destroy the capture being read: the message to
/// refuse it with, if it does.
pub fn input_as_output(output: &Path, inputs: &[InputSpec]) -> Option<String> {
    inputs.iter().find_map(|input| match input {
        InputSpec::Path(p) if same_file(p, output) => Some(format!(
            "{}: refusing to write the output over an input capture",
            output.display()
        )),
        _ => None,
    })
}

/// True when both paths exist and name the same file (through links or `..` too).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (fs::metadata(a), fs::metadata(b)) {
            return ma.dev() == mb.dev() && ma.ino() == mb.ino();
        }
        false
    }
    #[cfg(not(unix))]
    {
        match (fs::canonicalize(a), fs::canonicalize(b)) {
            (Ok(ca), Ok(cb)) => ca == cb,
            _ => false,
        }
    }
}

/// Writes `bytes` to `path` through an [`AtomicFile`].
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let mut file = AtomicFile::create(path)?;
    if let Err(error) = file.writer.write_all(bytes) {
        return Err(OutputError {
            path: path.display().to_string(),
            error,
        });
    }
    file.commit()
}

/// A binary format (PNG) bound for standard output is refused when standard output is a
/// terminal, where the bytes would only scramble the screen; redirected (`> chart.png`,
/// `| display`) they are written. `output` is the `-o` file, if any (`-` is standard
/// output).
pub fn refuse_binary_on_terminal(output: Option<&Path>) -> Result<(), BinaryOnTerminal> {
    refuse_format_on_terminal(output, "png")
}

/// [`refuse_binary_on_terminal`] for any binary format, named as its file extension
/// (`parquet`, `arrow`).
pub fn refuse_format_on_terminal(
    output: Option<&Path>,
    extension: &'static str,
) -> Result<(), BinaryOnTerminal> {
    let to_stdout = output.is_none_or(|p| p.as_os_str() == "-");
    if to_stdout && io::stdout().is_terminal() {
        return Err(BinaryOnTerminal { extension });
    }
    Ok(())
}

/// A binary format asked for on a terminal.
#[derive(Debug)]
pub struct BinaryOnTerminal {
    /// The format, as its file extension.
    pub extension: &'static str,
}

impl fmt::Display for BinaryOnTerminal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ext = self.extension;
        write!(
            f,
            "{ext} output is binary and standard output is a terminal: \
             redirect it (> out.{ext}) or add -o FILE.{ext}"
        )
    }
}

impl std::error::Error for BinaryOnTerminal {}

/// Writes `bytes` to `output` atomically, or to standard output for `None` and `-`.
pub fn write_output(output: Option<&Path>, bytes: &[u8]) -> Result<(), OutputError> {
    match output.filter(|p| p.as_os_str() != "-") {
        Some(out) => write_atomically(out, bytes),
        None => {
            let mut stdout = io::stdout().lock();
            stdout
                .write_all(bytes)
                .and_then(|()| stdout.flush())
                .map_err(|error| OutputError {
                    path: "standard output".to_string(),
                    error,
                })
        }
    }
}

/// A file written under a temporary name in the target's directory (so the final rename
/// stays on one filesystem and is atomic) and renamed over the target on commit. Dropped
/// without commit, it removes itself.
///
/// A target that exists and is not a regular file (`/dev/null`, a FIFO, `/dev/stdout`) is
/// written in place: renaming over it would replace the device with a regular file, which
/// is how a benchmark's `report -o /dev/null` once turned a machine's `/dev/null` into a
/// growing file that broke every later build.
pub struct AtomicFile {
    target: PathBuf,
    /// The temporary file renamed over the target on commit; `None` when writing in place.
    temp: Option<PathBuf>,
    pub writer: BufWriter<File>,
    committed: bool,
}

impl AtomicFile {
    pub fn create(target: &Path) -> Result<AtomicFile, OutputError> {
        let output_error = |error: io::Error| OutputError {
            path: target.display().to_string(),
            error,
        };
        let name = target.file_name().ok_or_else(|| {
            output_error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a file name",
            ))
        })?;
        if target.is_dir() {
            return Err(output_error(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )));
        }
        if fs::metadata(target).is_ok_and(|m| !m.is_file()) {
            let file = File::options()
                .write(true)
                .open(target)
                .map_err(output_error)?;
            return Ok(AtomicFile {
                target: target.to_path_buf(),
                temp: None,
                writer: BufWriter::new(file),
                committed: false,
            });
        }
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".closewait-{}.tmp", std::process::id()));
        let temp = dir.join(temp_name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(output_error)?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            temp: Some(temp),
            writer: BufWriter::new(file),
            committed: false,
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    pub fn commit(mut self) -> Result<(), OutputError> {
        let result = match &self.temp {
            Some(temp) => self
                .writer
                .flush()
                .and_then(|()| self.writer.get_ref().sync_all())
                .and_then(|()| fs::rename(temp, &self.target)),
            None => self.writer.flush(),
        };
        match result {
            Ok(()) => {
                self.committed = true;
                Ok(())
            }
            Err(error) => Err(OutputError {
                path: self.target.display().to_string(),
                error,
            }),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let (false, Some(temp)) = (self.committed, &self.temp) {
            let _ = fs::remove_file(temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PNG to a file is never refused; to standard output only on a terminal (tested
    /// through a pseudo-terminal in tests/it/chart.rs).
    #[test]
    fn binary_output_to_a_file_is_never_refused() {
        assert!(refuse_binary_on_terminal(Some(Path::new("x.png"))).is_ok());
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("closewait-output-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Pic {
        Svg,
        Png,
    }

    const PICS: OutputFormats<Pic> = OutputFormats {
        command: "chart",
        by_extension: &[("svg", Pic::Svg), ("png", Pic::Png)],
        default: Pic::Svg,
        option: "--format",
    };

    #[test]
    fn format_comes_from_the_option_then_the_extension() {
        let p = |s: &str| Some(Path::new(s).to_path_buf());
        assert_eq!(PICS.choose(None, None), Ok(Pic::Svg));
        assert_eq!(PICS.choose(None, p("-").as_deref()), Ok(Pic::Svg));
        assert_eq!(PICS.choose(None, p("a/b.PNG").as_deref()), Ok(Pic::Png));
        assert_eq!(PICS.choose(None, p("chart").as_deref()), Ok(Pic::Svg));
        let e = PICS
            .choose(None, p("x.jpg").as_deref())
            .expect_err("refused");
        assert_eq!(
            e.to_string(),
            "x.jpg: chart does not write .jpg files; name the output .svg, .png (or give \
             --format to write one of its formats under this name)"
        );
        assert_eq!(
            PICS.choose(Some(Pic::Png), p("x.jpg").as_deref()),
            Ok(Pic::Png)
        );
    }

    #[test]
    fn output_over_an_input_capture_is_refused() {
        let dir = scratch_dir("refuse");
        let cap = dir.join("a.pcap");
        fs::write(&cap, b"not really a capture").expect("write");
        let via_dotdot = dir.join("sub").join("..").join("a.pcap");
        fs::create_dir_all(dir.join("sub")).expect("mkdir");
        let inputs = [InputSpec::Path(cap.clone())];
        let e = input_as_output(&via_dotdot, &inputs).expect("refused");
        assert!(e.contains("refusing"));
        assert!(input_as_output(&dir.join("b.json"), &inputs).is_none());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn atomic_file_replaces_target_only_on_commit() {
        let dir = scratch_dir("atomic");
        let target = dir.join("out.txt");
        fs::write(&target, b"old").expect("write");

        let mut f = AtomicFile::create(&target).expect("create temp");
        f.writer.write_all(b"new").expect("write");
        drop(f); // not committed: target untouched, temp gone
        assert_eq!(fs::read(&target).expect("read"), b"old");
        assert_eq!(fs::read_dir(&dir).expect("list").count(), 1);

        write_atomically(&target, b"new").expect("written");
        assert_eq!(fs::read(&target).expect("read"), b"new");
        assert_eq!(fs::read_dir(&dir).expect("list").count(), 1);
        let _ = fs::remove_dir_all(&dir);
    }

    /// Renaming over `/dev/null` would make it a regular file: devices are written in place.
    #[cfg(unix)]
    #[test]
    fn a_device_target_is_written_in_place_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let null = Path::new("/dev/null");
        if !fs::metadata(null).is_ok_and(|m| m.file_type().is_char_device()) {
            eprintln!("SKIPPED: /dev/null is not a character device on this machine");
            return;
        }
        let mut out = AtomicFile::create(null).expect("open /dev/null");
        out.writer.write_all(b"discarded").unwrap();
        out.commit().expect("commit to /dev/null");
        assert!(fs::metadata(null).unwrap().file_type().is_char_device());
    }

    #[test]
    fn output_into_missing_directory_is_an_output_error_naming_it() {
        let dir = scratch_dir("missing");
        let target = dir.join("nope").join("out.json");
        let e = AtomicFile::create(&target)
            .err()
            .expect("no such directory");
        assert!(e
            .to_string()
            .starts_with(&format!("{}: ", target.display())));
        let _ = fs::remove_dir_all(&dir);
    }
}
