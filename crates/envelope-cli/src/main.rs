//! `envelope`: encrypt and decrypt files and pipes in the AWS Encryption SDK message format.
//!
//! Everything streams: memory stays around twice the frame length whatever the input size (unless
//! `--buffer` asks to hold the output back until the whole message verified).
#![allow(clippy::print_stderr)]

mod caching;
mod codec;
mod failure;
mod jobs;
mod keys;
mod kms;
mod metadata;
mod output;
mod progress;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use envelope::blocking::Client;
use envelope::format::{Header, HeaderDecoder, HeaderLimits, Parsed};
use envelope::{AlgorithmSuite, CommitmentPolicy, EncryptionContext, MaterialsManager};
use serde_json::{Value, json};

use crate::caching::Caching;
use crate::codec::{Base64Reader, Sink};
use crate::failure::Failure;
use crate::jobs::{Job, Mode, Overwrite};
use crate::keys::Keys;
use crate::kms::Side;
use crate::metadata::Metadata;

/// `envelope --version`: the version, the crypto backend and whether it is a FIPS module in
/// approved mode (asked of the module once, when the command line is parsed).
fn version_line() -> &'static str {
    static LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LINE.get_or_init(|| {
        format!(
            "{} (backend: {}; FIPS: {})",
            env!("CARGO_PKG_VERSION"),
            envelope::crypto::BACKEND,
            envelope::crypto::fips_status()
        )
    })
}

#[derive(Parser)]
#[command(
    name = "envelope",
    version = version_line(),
    about = "Encrypt and decrypt with the AWS Encryption SDK message format"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encrypt INPUT (default stdin) into OUTPUT (default stdout).
    Encrypt(EncryptArgs),
    /// Decrypt INPUT (default stdin) into OUTPUT (default stdout).
    Decrypt(DecryptArgs),
    /// Print a message's header: suite, encryption context, encrypted data keys.
    Info(InfoArgs),
    /// Print a shell completion script (e.g. `envelope completions bash > /etc/bash_completion.d/envelope`).
    Completions(CompletionsArgs),
}

#[derive(Args)]
struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Args)]
struct Io {
    /// Read these files instead of stdin (`-`: stdin). Several files (a shell glob), or a
    /// directory with -r, need -o DIR.
    #[arg(short, long, num_args = 1.., value_name = "PATH")]
    input: Vec<PathBuf>,
    /// Write to this file instead of stdout, or into this directory as INPUT_NAME+SUFFIX. Files
    /// are written to a temporary file and renamed into place on success.
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Process every file under the input directories, mirroring the tree under -o DIR (created
    /// if missing). Symbolic links to directories are not followed.
    #[arg(short = 'r', visible_short_alias = 'R', long)]
    recursive: bool,
    /// The suffix of output files named after their inputs (default .encrypted on encrypt,
    /// .decrypted on decrypt; `--suffix` alone: none).
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "SUFFIX")]
    suffix: Option<String>,
    /// Ask before replacing an existing output file.
    #[arg(long, conflicts_with = "no_overwrite")]
    interactive: bool,
    /// Never replace an existing output file: skip that input and say so.
    #[arg(long)]
    no_overwrite: bool,
    /// Reuse data keys across the command's files: `capacity=N max_age=SECONDS
    /// [max_messages_encrypted=N] [max_bytes_encrypted=N]` (aws-encryption-sdk-cli's settings).
    /// Encryption caches only inputs whose length is known (files, not pipes).
    #[arg(long, num_args = 1.., value_name = "SETTING")]
    caching: Vec<String>,
    /// Show no progress bar (one is drawn on standard error for inputs of 8 MiB or more, or of
    /// unknown length, when standard error is a terminal and -q is not given).
    #[arg(long)]
    no_progress: bool,
    /// Encryption context pairs KEY=VALUE (`-c a=1 b=2` or `-c a=1 -c b=2`). On decrypt the
    /// message's context must
    /// hold every pair, and KEY alone requires the key with any value.
    #[arg(
        short = 'c',
        long = "encryption-context",
        visible_alias = "context",
        value_name = "KEY=VALUE",
        num_args = 1..,
        action = clap::ArgAction::Append
    )]
    context: Vec<String>,
    /// Commitment policy.
    #[arg(long, value_enum, default_value_t = Policy::RequireEncryptRequireDecrypt)]
    commitment_policy: Policy,
    /// The largest frame length to write or to stream (default 64 MiB): encrypting with longer
    /// frames, or decrypting a message that has them (or a non-framed body that long), fails
    /// before any key is used.
    #[arg(
        long,
        visible_alias = "max-length",
        value_name = "BYTES",
        default_value_t = envelope::DEFAULT_MAX_FRAME_LENGTH
    )]
    max_frame_length: u32,
    /// Refuse messages with more encrypted data keys than this, before any key is tried.
    #[arg(
        long,
        value_name = "N",
        default_value_t = envelope::DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    max_encrypted_data_keys: u16,
    /// Hash signed messages on the calling thread only (by default large signed messages hash on
    /// a second core while the first encrypts).
    #[arg(long)]
    single_core: bool,
    /// The input is Base64 text: decode it first.
    #[arg(long)]
    decode: bool,
    /// Write the output as Base64 text.
    #[arg(long)]
    encode: bool,
    /// Hold all output in memory and release it only once the whole command succeeded (for
    /// standard output; files are always renamed into place only on success).
    #[arg(short = 'b', long)]
    buffer: bool,
    /// Append one JSON line per operation to FILE (`-`: standard output) in aws-encryption-sdk-cli's
    /// fields: mode, input, output, header, and header_auth on decrypt.
    #[arg(long, value_name = "FILE", conflicts_with = "suppress_metadata")]
    metadata_output: Option<PathBuf>,
    /// Replace the --metadata-output file instead of appending to it.
    #[arg(long, requires = "metadata_output")]
    overwrite_metadata: bool,
    /// Write no metadata (the default; accepted for aws-encryption-sdk-cli's -S).
    #[arg(short = 'S', long)]
    suppress_metadata: bool,
    /// Say what was done on standard error (-vv: and whose data keys).
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
    /// Print no warnings (the report -v asks for is still printed).
    #[arg(short, long)]
    quiet: bool,
}

impl Io {
    /// Whether a progress bar may be drawn: not with -q or --no-progress.
    fn progress_allowed(&self) -> bool {
        !(self.quiet || self.no_progress)
    }
}

#[derive(Args)]
struct EncryptArgs {
    #[command(flatten)]
    keys: Keys,
    #[command(flatten)]
    io: Io,
    /// Algorithm suite: its id in hex (e.g. 0578), its ESDK name, or the Python ESDK's name
    /// (e.g. AES_256_GCM_HKDF_SHA512_COMMIT_KEY); default: the commitment policy's.
    #[arg(long, visible_alias = "algorithm", value_parser = parse_suite)]
    suite: Option<AlgorithmSuite>,
    /// Frame length in bytes (1 to the maximum frame length).
    #[arg(long, default_value_t = envelope::DEFAULT_FRAME)]
    frame_length: NonZeroU32,
    /// How a plaintext that is an exact multiple of the frame length ends: `empty` (regular frames
    /// and an empty final frame, what aws-encryption-sdk-cli writes and the only form it and the
    /// Python ESDK before 4.0 decrypt) or `full` (the last chunk is the final frame, the
    /// specification's recommendation and the library's default; 32 bytes shorter).
    #[arg(long, value_enum, default_value_t = FinalFrameArg::Empty)]
    final_frame: FinalFrameArg,
}

/// The `--final-frame` forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FinalFrameArg {
    Empty,
    Full,
}

impl From<FinalFrameArg> for envelope::format::FinalFrame {
    fn from(arg: FinalFrameArg) -> Self {
        match arg {
            FinalFrameArg::Empty => Self::Empty,
            FinalFrameArg::Full => Self::Full,
        }
    }
}

#[derive(Args)]
struct DecryptArgs {
    #[command(flatten)]
    keys: Keys,
    #[command(flatten)]
    io: Io,
    /// Refuse signed messages, so that every byte written is final when it is written.
    #[arg(long, visible_alias = "decrypt-unsigned")]
    unsigned_only: bool,
}

#[derive(Args)]
struct InfoArgs {
    /// The message (default stdin).
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// The message is Base64 text.
    #[arg(long)]
    decode: bool,
    /// Print the header as one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let sub = matches.subcommand().map(|(_, m)| m);
    let result = match cli.command {
        Command::Encrypt(mut args) => {
            if let Some(m) = sub {
                args.keys.group(m);
            }
            encrypt(args)
        }
        Command::Decrypt(mut args) => {
            if let Some(m) = sub {
                args.keys.group(m);
            }
            decrypt(args)
        }
        Command::Info(args) => info(args),
        Command::Completions(args) => completions(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Never panics, whatever standard error is (closed, full).
            let _ = writeln!(io::stderr(), "envelope: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A suite as `--suite`/`--algorithm` names it: what [`AlgorithmSuite`] parses, or the Python
/// ESDK's name (the ESDK name without `ALG_`, and without `_NO_KDF` for the legacy suites).
fn parse_suite(text: &str) -> Result<AlgorithmSuite, String> {
    text.parse::<AlgorithmSuite>().or_else(|e| {
        let name = text.trim().to_ascii_uppercase();
        AlgorithmSuite::ALL
            .into_iter()
            .find(|suite| metadata::python_suite_name(suite.name()) == name)
            .ok_or_else(|| {
                format!("{e}, or a Python ESDK name such as AES_256_GCM_HKDF_SHA512_COMMIT_KEY")
            })
    })
}

/// Commitment policies, as `--commitment-policy` names them (the aws-encryption-sdk-cli's names;
/// `require` and `forbid` for short).
#[derive(Clone, Copy, Debug, ValueEnum)]
#[allow(clippy::enum_variant_names)] // the ESDK's names
enum Policy {
    #[value(alias = "require")]
    RequireEncryptRequireDecrypt,
    RequireEncryptAllowDecrypt,
    #[value(alias = "forbid")]
    ForbidEncryptAllowDecrypt,
}

impl From<Policy> for CommitmentPolicy {
    fn from(policy: Policy) -> Self {
        match policy {
            Policy::RequireEncryptRequireDecrypt => Self::RequireEncryptRequireDecrypt,
            Policy::RequireEncryptAllowDecrypt => Self::RequireEncryptAllowDecrypt,
            Policy::ForbidEncryptAllowDecrypt => Self::ForbidEncryptAllowDecrypt,
        }
    }
}

/// One `-c` argument: `KEY=VALUE`, or (on decrypt) `KEY` alone.
fn split_pair(pair: &str) -> (&str, Option<&str>) {
    match pair.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (pair, None),
    }
}

/// The encryption context to encrypt under.
fn encrypt_context(pairs: &[String]) -> Result<EncryptionContext, Failure> {
    let mut ec = EncryptionContext::new();
    for pair in pairs {
        let (k, Some(v)) = split_pair(pair) else {
            return Err(format!(
                "context {pair:?} is not KEY=VALUE (KEY alone is for decrypt, to require the key)"
            )
            .into());
        };
        if ec.contains_key(k) {
            return Err(format!("context key {k:?} is given more than once").into());
        }
        ec.insert(k, v);
    }
    Ok(ec)
}

/// What decrypt requires of the message's encryption context: each key, with its value when given.
fn required_context(pairs: &[String]) -> Result<Vec<(String, Option<String>)>, Failure> {
    let mut required: Vec<(String, Option<String>)> = Vec::new();
    for pair in pairs {
        let (k, v) = split_pair(pair);
        if k.is_empty() {
            return Err(format!("context {pair:?} has an empty key").into());
        }
        if required.iter().any(|(seen, _)| seen == k) {
            return Err(format!("context key {k:?} is given more than once").into());
        }
        required.push((k.to_string(), v.map(str::to_string)));
    }
    Ok(required)
}

/// The requirements `context` does not meet: keys it lacks, and pairs it lacks.
struct Unmet {
    keys: Vec<String>,
    pairs: Vec<(String, String)>,
    /// One sentence per requirement not met.
    reasons: Vec<String>,
}

fn unmet(required: &[(String, Option<String>)], context: &EncryptionContext) -> Unmet {
    let mut unmet = Unmet {
        keys: Vec::new(),
        pairs: Vec::new(),
        reasons: Vec::new(),
    };
    for (key, value) in required {
        match (context.get(key), value) {
            (None, None) => {
                unmet.keys.push(key.clone());
                unmet.reasons.push(format!(
                    "the message's encryption context has no key {key:?}"
                ));
            }
            (None, Some(value)) => {
                unmet.pairs.push((key.clone(), value.clone()));
                unmet.reasons.push(format!(
                    "the message's encryption context has no key {key:?}"
                ));
            }
            (Some(found), Some(value)) if found != value => {
                unmet.pairs.push((key.clone(), value.clone()));
                unmet.reasons.push(format!(
                    "the message's encryption context has {key:?} = {found:?}, not {value:?}"
                ));
            }
            _ => {}
        }
    }
    unmet
}

fn client(io_args: &Io) -> Client {
    let builder = envelope::Client::builder()
        .commitment_policy(CommitmentPolicy::from(io_args.commitment_policy))
        .max_frame_length(io_args.max_frame_length)
        .max_encrypted_data_keys(Some(io_args.max_encrypted_data_keys))
        .signature_hashing(if io_args.single_core {
            envelope::SignatureHashing::Inline
        } else {
            envelope::SignatureHashing::for_this_machine()
        });
    Client::from(builder.build())
}

/// The input (`None` or `-`: standard input), Base64-decoded with `decode`.
fn input(path: Option<&Path>, decode: bool) -> Result<Box<dyn Read>, Failure> {
    let raw: Box<dyn Read> = match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => Box::new(BufReader::new(
            File::open(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        None => Box::new(io::stdin().lock()),
    };
    Ok(if decode {
        Box::new(Base64Reader::new(raw))
    } else {
        raw
    })
}

fn is_stdout(path: Option<&Path>) -> bool {
    path.is_none_or(|p| p == Path::new("-"))
}

/// The jobs the arguments ask for, every path checked; entries of a walked tree that are not
/// files are reported (unless -q).
fn plan(io_args: &Io, mode: Mode) -> Result<Vec<Job>, Failure> {
    let mut skipped = Vec::new();
    let jobs = jobs::plan(
        &jobs::Request {
            inputs: &io_args.input,
            output: io_args.output.as_deref(),
            recursive: io_args.recursive,
            suffix: io_args.suffix.as_deref(),
            mode,
        },
        &mut skipped,
    )?;
    if !io_args.quiet {
        for path in skipped {
            let _ = writeln!(
                io::stderr(),
                "envelope: skipped {}: not a file",
                path.display()
            );
        }
    }
    if io_args.interactive && jobs.iter().any(|j| j.input.is_none()) {
        return Err(
            "--interactive reads its answers from standard input, which is the input".into(),
        );
    }
    // The first output that cannot be written fails the command before anything is written.
    for job in &jobs {
        if !job.create_parent {
            output::Destination::check(job.output.as_deref())?;
        }
    }
    Ok(jobs)
}

fn overwrite(io_args: &Io) -> Overwrite {
    if io_args.no_overwrite {
        Overwrite::Never
    } else if io_args.interactive {
        Overwrite::Ask
    } else {
        Overwrite::Always
    }
}

/// The job's destination, its directory created first when it mirrors an input tree.
fn destination(job: &Job) -> Result<output::Destination, Failure> {
    if job.create_parent
        && let Some(parent) = job.output.as_deref().and_then(Path::parent)
    {
        fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    Ok(output::Destination::check(job.output.as_deref())?)
}

/// The metadata destination, opened before any output file is created; refused when it and an
/// output would both be standard output.
fn open_metadata(io_args: &Io, jobs: &[Job]) -> Result<Option<Metadata>, Failure> {
    let Some(path) = io_args.metadata_output.as_deref() else {
        return Ok(None);
    };
    if path == Path::new("-") && jobs.iter().any(|j| is_stdout(j.output.as_deref())) {
        return Err(
            "--metadata-output - and the output would both be standard output; name a file for one"
                .into(),
        );
    }
    Ok(Some(Metadata::open(path, io_args.overwrite_metadata)?))
}

/// The names the metadata and `-v` give the input and output.
fn names(job: &Job) -> (String, String) {
    (
        metadata::file_name(job.input.as_deref(), "<stdin>"),
        metadata::file_name(job.output.as_deref(), "<stdout>"),
    )
}

/// With `-v`, say what was done; with `-vv`, also whose data keys.
fn report(io_args: &Io, job: &Job, done: &str, header: &Header, bytes: u64) {
    if io_args.verbose == 0 {
        return;
    }
    let (input, output) = names(job);
    let body = header.body();
    let mut text = format!(
        "envelope: {done} {input} to {output} ({bytes} bytes of plaintext): suite {}, frame length {}, {} data key(s)",
        body.suite(),
        body.framing().frame_length(),
        body.encrypted_data_keys().len()
    );
    if io_args.verbose > 1 {
        for edk in body.encrypted_data_keys() {
            text.push_str("\nenvelope:   ");
            text.push_str(&keys::describe_data_key(edk, true));
        }
    }
    let _ = writeln!(io::stderr(), "{text}");
}

/// With `-v` and `--caching`, how the cache served the command.
fn report_caching(io_args: &Io, caching: Option<&Caching>) {
    if let (Some(caching), true) = (caching, io_args.verbose > 0) {
        let counts = caching.counts();
        let _ = writeln!(
            io::stderr(),
            "envelope: data-key cache: {} hits, {} misses, {} not cacheable",
            counts.hits,
            counts.misses,
            counts.bypasses
        );
    }
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts the bytes read through it.
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// A job's error, naming its input when the command has several.
fn in_job(error: Failure, job: &Job, several: bool) -> Failure {
    match (&job.input, several) {
        (Some(input), true) => format!("{}: {error}", input.display()).into(),
        _ => error,
    }
}

fn encrypt(args: EncryptArgs) -> Result<(), Failure> {
    let io_args = &args.io;
    // Every argument is checked, and the first input opened, before any output file is created.
    let keyring = keys::keyring(&args.keys, Side::Encrypt, io_args.quiet, None)?;
    let client = client(io_args);
    let encryption_context = encrypt_context(&io_args.context)?;
    let caching = Caching::parse(&io_args.caching)?;
    let jobs = plan(io_args, Mode::Encrypt)?;
    let mut metadata = open_metadata(io_args, &jobs)?;
    let cmm = caching::materials_manager(caching.as_ref(), keyring)?;
    let overwrite = overwrite(io_args);
    for job in &jobs {
        if !jobs::may_write(job, overwrite, io_args.quiet)? {
            continue;
        }
        let bound = job.input_len.filter(|_| caching.is_some());
        encrypt_one(
            &args,
            &client,
            &*cmm,
            &encryption_context,
            job,
            bound,
            &mut metadata,
        )
        .map_err(|e| in_job(e, job, jobs.len() > 1))?;
    }
    report_caching(io_args, caching.as_ref());
    Ok(())
}

/// Encrypt one input. `bound` is the input's length, promised to a caching CMM.
fn encrypt_one(
    args: &EncryptArgs,
    client: &Client,
    cmm: &dyn MaterialsManager,
    encryption_context: &EncryptionContext,
    job: &Job,
    bound: Option<u64>,
    metadata: &mut Option<Metadata>,
) -> Result<(), Failure> {
    let io_args = &args.io;
    let source = input(job.input.as_deref(), io_args.decode)?;
    let mut source = CountingReader {
        inner: progress::wrap(source, job, io_args.progress_allowed()),
        count: 0,
    };
    let (output, sink) = destination(job)?.open()?;
    let sink = Sink::new(sink, io_args.encode, io_args.buffer);
    let mut request = client
        .encrypt_stream(cmm, sink)
        .encryption_context(encryption_context.clone())
        .frame_length(args.frame_length)
        .final_frame(args.final_frame.into());
    if let Some(suite) = args.suite {
        request = request.suite(suite);
    }
    if let Some(bound) = bound {
        request = request.plaintext_length_bound(bound);
    }
    // Dropping `output` on an error path removes the temporary file.
    let writer = request.run().map_err(|e| stream_error(e, job))?;
    let header = writer.header().clone();
    let sink = writer
        .encrypt_from(&mut source)
        .map_err(|e| stream_error(e, job))?;
    sink.finish()
        .map_err(|e| stream_error(envelope::Error::Io(e), job))?;
    output.commit()?;
    if let Some(metadata) = metadata {
        let (input, output) = names(job);
        metadata.write(&Value::Object(metadata::line(
            "encrypt", &input, &output, &header,
        )))?;
    }
    report(io_args, job, "encrypted", &header, source.count);
    Ok(())
}

/// Name what failed: writing to a closed standard output is said plainly.
fn stream_error(e: envelope::Error, job: &Job) -> Failure {
    match &e {
        envelope::Error::Io(io)
            if io.kind() == io::ErrorKind::BrokenPipe && is_stdout(job.output.as_deref()) =>
        {
            "standard output was closed before the output was complete".into()
        }
        _ => e.into(),
    }
}

/// Read from `source` until its header is complete (the decoder bounds how much it takes): the
/// header, or why there is none (the input ends inside it, or it is malformed), and every byte
/// read.
fn read_header(source: &mut dyn Read) -> io::Result<(Result<Header, Failure>, Vec<u8>)> {
    let mut decoder = HeaderDecoder::new(HeaderLimits::default());
    let mut seen = Vec::new();
    let mut chunk = vec![0u8; 16 << 10];
    loop {
        let n = match source.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok((Err("the input ends inside the header".into()), seen));
        }
        seen.extend_from_slice(&chunk[..n]);
        match decoder.feed(&chunk[..n]) {
            Ok(Parsed::Complete(header, _)) => return Ok((Ok(header), seen)),
            Ok(Parsed::Incomplete(_)) => {}
            Err(e) => return Ok((Err(e.into()), seen)),
        }
    }
}

/// Read the header from the start of `source`, if it holds one, and give back a reader of the
/// whole input: the header tells discovery where to look and error messages whose keys the
/// message holds. A missing or malformed header is left for decryption to report.
fn peek_header(mut source: Box<dyn Read>) -> Result<(Option<Header>, Box<dyn Read>), Failure> {
    let (header, seen) = read_header(&mut *source).map_err(envelope::Error::Io)?;
    Ok((header.ok(), Box::new(io::Cursor::new(seen).chain(source))))
}

/// How one decryption ended, when it did not fail.
enum Decrypted {
    Done,
    /// The message's encryption context lacks what -c requires: nothing was written.
    Skipped(String),
}

fn decrypt(args: DecryptArgs) -> Result<(), Failure> {
    let io_args = &args.io;
    let groups = args.keys.kms_groups(Side::Decrypt)?;
    let client = client(io_args);
    let required = required_context(&io_args.context)?;
    let caching = Caching::parse(&io_args.caching)?;
    let jobs = plan(io_args, Mode::Decrypt)?;
    let mut metadata = open_metadata(io_args, &jobs)?;
    let overwrite = overwrite(io_args);
    let several = jobs.len() > 1;
    let mut skipped = Vec::new();
    let mut cmms = Cmms {
        groups,
        caching: caching.as_ref(),
        built: HashMap::new(),
    };
    for job in &jobs {
        if !jobs::may_write(job, overwrite, io_args.quiet)? {
            continue;
        }
        let done = decrypt_one(&args, &client, &mut cmms, &required, job, &mut metadata)
            .map_err(|e| in_job(e, job, several))?;
        if let Decrypted::Skipped(reason) = done {
            if several {
                let _ = writeln!(
                    io::stderr(),
                    "envelope: {}",
                    in_job(reason.clone().into(), job, true)
                );
            }
            skipped.push(reason);
        }
    }
    report_caching(io_args, caching.as_ref());
    match (skipped.len(), several) {
        (0, _) => Ok(()),
        (1, false) => Err(skipped.remove(0).into()),
        (n, _) => Err(format!("{n} of {} inputs not decrypted (see above)", jobs.len()).into()),
    }
}

/// The decryption CMMs of a command, one per set of Regions discovery asks (usually one for the
/// whole command: their KMS clients and, with --caching, their cache are reused across files).
struct Cmms<'a> {
    groups: Vec<kms::Group>,
    caching: Option<&'a Caching>,
    built: HashMap<Vec<String>, Arc<dyn MaterialsManager>>,
}

impl Cmms<'_> {
    fn for_header(
        &mut self,
        keys: &Keys,
        quiet: bool,
        header: Option<&Header>,
    ) -> Result<Arc<dyn MaterialsManager>, Failure> {
        let regions = kms::header_regions(&self.groups, header);
        if let Some(cmm) = self.built.get(&regions) {
            return Ok(Arc::clone(cmm));
        }
        // The demo key's warning once per command.
        let quiet = quiet || !self.built.is_empty();
        let keyring = keys::keyring(keys, Side::Decrypt, quiet, header)?;
        let cmm = caching::materials_manager(self.caching, keyring)?;
        self.built.insert(regions, Arc::clone(&cmm));
        Ok(cmm)
    }
}

fn decrypt_one(
    args: &DecryptArgs,
    client: &Client,
    cmms: &mut Cmms<'_>,
    required: &[(String, Option<String>)],
    job: &Job,
    metadata: &mut Option<Metadata>,
) -> Result<Decrypted, Failure> {
    let io_args = &args.io;
    let source = progress::wrap(
        input(job.input.as_deref(), io_args.decode)?,
        job,
        io_args.progress_allowed(),
    );
    let (peeked, source) = peek_header(source)?;
    let cmm = cmms.for_header(&args.keys, io_args.quiet, peeked.as_ref())?;
    let (output, sink) = destination(job)?.open()?;
    let mut sink = Counting {
        inner: Sink::new(sink, io_args.encode, io_args.buffer),
        count: 0,
    };
    let mut request = client.decrypt_stream(&*cmm, source);
    if args.unsigned_only {
        request = request.unsigned_only();
    }
    // Dropping `output` on an error path removes the temporary file and any plaintext in it.
    let reader = match request.run() {
        Ok(reader) => reader,
        Err(e) if keys::no_key_matched(&e) => {
            return Err(match &peeked {
                Some(header) => format!("{e}\n{}", keys::no_match_hint(&args.keys, header)),
                None => e.to_string(),
            }
            .into());
        }
        Err(e) => return Err(stream_error(e, job)),
    };
    // The header is authenticated now; no plaintext has been produced yet.
    let header = reader.header().clone();
    let (input_name, output_name) = names(job);
    let mut line = metadata::line("decrypt", &input_name, &output_name, &header);
    let unmet = unmet(required, reader.encryption_context());
    if !unmet.reasons.is_empty() {
        if let Some(metadata) = metadata {
            line.insert("skipped".into(), true.into());
            line.insert(
                "reason".into(),
                "Missing encryption context key or value".into(),
            );
            line.insert("missing_encryption_context_keys".into(), json!(unmet.keys));
            line.insert(
                "missing_encryption_context_pairs".into(),
                json!(unmet.pairs),
            );
            metadata.write(&Value::Object(line))?;
        }
        return Ok(Decrypted::Skipped(format!(
            "not decrypted: {}",
            unmet.reasons.join("; ")
        )));
    }
    reader
        .decrypt_into(&mut sink)
        .map_err(|e| stream_error(e, job))?;
    let plaintext = sink.count;
    sink.inner
        .finish()
        .map_err(|e| stream_error(envelope::Error::Io(e), job))?;
    output.commit()?;
    if let Some(metadata) = metadata {
        metadata.write(&Value::Object(line))?;
    }
    report(io_args, job, "decrypted", &header, plaintext);
    Ok(Decrypted::Done)
}

fn completions(args: &CompletionsArgs) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "envelope", &mut script);
    let mut out = io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(format!("writing to standard output: {e}").into())
        }
        _ => Ok(()),
    }
}

fn info(args: InfoArgs) -> Result<(), Failure> {
    let mut source = input(args.input.as_deref(), args.decode)?;
    let header = read_header(&mut *source)?.0?;
    let mut out = BufWriter::new(io::stdout().lock());
    let printed = if args.json {
        writeln!(out, "{}", info_json(&header)).and_then(|()| out.flush())
    } else {
        print_header(&header, &mut out)
    };
    match printed {
        // The reader stopped reading (`| head`): not a failure of ours.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing to standard output: {e}").into()),
        Ok(()) => Ok(()),
    }
}

/// `info --json`: the header in aws-encryption-sdk-cli's metadata fields, its length, and each
/// data key's owner decoded (raw AES key name and IV, KMS key ARN).
fn info_json(header: &Header) -> Value {
    let data_keys: Vec<Value> = header
        .body()
        .encrypted_data_keys()
        .iter()
        .map(keys::data_key_json)
        .collect();
    json!({
        "header": metadata::header_json(header),
        "header_auth": metadata::header_auth_json(header),
        "header_length": header.len(),
        "data_keys": data_keys,
        "authenticated": false,
    })
}

fn print_header(header: &Header, out: &mut impl Write) -> io::Result<()> {
    let body = header.body();
    writeln!(out, "suite:              {}", body.suite())?;
    writeln!(out, "message id:         {:?}", body.message_id())?;
    writeln!(out, "frame length:       {}", body.framing().frame_length())?;
    writeln!(out, "header length:      {} bytes", header.len())?;
    for (k, v) in body.encryption_context().iter() {
        writeln!(out, "encryption context: {k:?} = {v:?}")?;
    }
    for edk in body.encrypted_data_keys() {
        writeln!(
            out,
            "encrypted data key: {}, {} bytes",
            keys::describe_data_key(edk, true),
            edk.ciphertext().len()
        )?;
    }
    writeln!(
        out,
        "(the header is not authenticated until a key decrypts the message)"
    )?;
    out.flush()
}
