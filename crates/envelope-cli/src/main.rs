//! `envelope`: encrypt and decrypt files and pipes in the AWS Encryption SDK message format.
//!
//! Everything streams: memory stays around twice the frame length whatever the input size (unless
//! `--buffer` asks to hold the output back until the whole message verified).
#![allow(clippy::print_stderr)]

mod codec;
mod keys;
mod kms;
mod metadata;
mod output;

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use envelope::blocking::Client;
use envelope::format::{DEFAULT_MAX_HEADER_LEN, Header, HeaderDecoder, HeaderLimits, Parsed};
use envelope::{AlgorithmSuite, CommitmentPolicy, EncryptionContext};
use serde_json::{Value, json};

use crate::codec::{Base64Reader, Sink};
use crate::keys::Keys;
use crate::kms::Side;
use crate::metadata::Metadata;

#[derive(Parser)]
#[command(
    name = "envelope",
    version,
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
}

#[derive(Args)]
struct Io {
    /// Read from this file instead of stdin.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Write to this file instead of stdout (written to a temporary file, renamed on success).
    #[arg(short, long)]
    output: Option<PathBuf>,
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
    #[arg(long)]
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

type Failure = Box<dyn std::error::Error>;

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
fn input(path: Option<&PathBuf>, decode: bool) -> Result<Box<dyn Read>, Failure> {
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

/// The metadata destination, opened before any output file is created; refused when it and the
/// output would both be standard output.
fn open_metadata(io_args: &Io) -> Result<Option<Metadata>, Failure> {
    let Some(path) = io_args.metadata_output.as_deref() else {
        return Ok(None);
    };
    if path == Path::new("-") && is_stdout(io_args.output.as_deref()) {
        return Err(
            "--metadata-output - and the output would both be standard output; name a file for one"
                .into(),
        );
    }
    Ok(Some(Metadata::open(path, io_args.overwrite_metadata)?))
}

/// The names the metadata and `-v` give the input and output.
fn names(io_args: &Io) -> (String, String) {
    (
        metadata::file_name(io_args.input.as_deref(), "<stdin>"),
        metadata::file_name(io_args.output.as_deref(), "<stdout>"),
    )
}

/// With `-v`, say what was done; with `-vv`, also whose data keys the message holds.
fn report(io_args: &Io, done: &str, header: &Header, bytes: Option<u64>) {
    if io_args.verbose == 0 {
        return;
    }
    let (input, output) = names(io_args);
    let body = header.body();
    let size = bytes.map_or_else(String::new, |n| format!(" ({n} bytes of plaintext)"));
    let mut text = format!(
        "envelope: {done} {input} to {output}{size}: suite {}, frame length {}, {} data key(s)",
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

fn encrypt(args: EncryptArgs) -> Result<(), Failure> {
    let io_args = &args.io;
    // Every argument is checked, and the input opened, before any output file is created.
    let keyring = keys::keyring(&args.keys, Side::Encrypt, io_args.quiet, None)?;
    let client = client(io_args);
    let encryption_context = encrypt_context(&io_args.context)?;
    let mut metadata = open_metadata(io_args)?;
    let source = CountingReader {
        inner: input(io_args.input.as_ref(), io_args.decode)?,
        count: 0,
    };
    let destination = output::Destination::check(io_args.output.as_deref())?;
    let (output, sink) = destination.open()?;
    let sink = Sink::new(sink, io_args.encode, io_args.buffer);
    let mut request = client
        .encrypt_stream(&keyring, sink)
        .encryption_context(encryption_context)
        .frame_length(args.frame_length)
        .final_frame(args.final_frame.into());
    if let Some(suite) = args.suite {
        request = request.suite(suite);
    }
    let mut source = source;
    // Dropping `output` on an error path removes the temporary file.
    let writer = request.run().map_err(|e| stream_error(e, io_args))?;
    let header = writer.header().clone();
    let sink = writer
        .encrypt_from(&mut source)
        .map_err(|e| stream_error(e, io_args))?;
    sink.finish()
        .map_err(|e| stream_error(envelope::Error::Io(e), io_args))?;
    output.commit()?;
    if let Some(metadata) = &mut metadata {
        let (input, output) = names(io_args);
        metadata.write(&Value::Object(metadata::line(
            "encrypt", &input, &output, &header,
        )))?;
    }
    report(io_args, "encrypted", &header, Some(source.count));
    Ok(())
}

/// Name what failed: writing to a closed standard output is said plainly.
fn stream_error(e: envelope::Error, io_args: &Io) -> Failure {
    match &e {
        envelope::Error::Io(io)
            if io.kind() == io::ErrorKind::BrokenPipe && is_stdout(io_args.output.as_deref()) =>
        {
            "standard output was closed before the output was complete".into()
        }
        _ => e.into(),
    }
}

/// Read the header from the start of `source`, if it holds one, and give back a reader of the
/// whole input: the header tells discovery where to look and error messages whose keys the
/// message holds. A malformed header is left for decryption to report.
fn peek_header(mut source: Box<dyn Read>) -> Result<(Option<Header>, Box<dyn Read>), Failure> {
    let mut decoder = HeaderDecoder::new(HeaderLimits::default());
    let mut seen = Vec::new();
    let mut chunk = vec![0u8; 16 << 10];
    let header = loop {
        let n = match source.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(envelope::Error::Io(e).into()),
        };
        if n == 0 {
            break None;
        }
        seen.extend_from_slice(&chunk[..n]);
        match decoder.feed(&chunk[..n]) {
            Ok(Parsed::Complete(header, _)) => break Some(header),
            Ok(_) if seen.len() <= DEFAULT_MAX_HEADER_LEN => {}
            _ => break None,
        }
    };
    Ok((header, Box::new(io::Cursor::new(seen).chain(source))))
}

fn decrypt(args: DecryptArgs) -> Result<(), Failure> {
    let io_args = &args.io;
    args.keys.kms_groups(Side::Decrypt)?;
    let client = client(io_args);
    let required = required_context(&io_args.context)?;
    let mut metadata = open_metadata(io_args)?;
    let (peeked, source) = peek_header(input(io_args.input.as_ref(), io_args.decode)?)?;
    let keyring = keys::keyring(&args.keys, Side::Decrypt, io_args.quiet, peeked.as_ref())?;
    let destination = output::Destination::check(io_args.output.as_deref())?;
    let (output, sink) = destination.open()?;
    let mut sink = Counting {
        inner: Sink::new(sink, io_args.encode, io_args.buffer),
        count: 0,
    };
    let mut request = client.decrypt_stream(&keyring, source);
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
        Err(e) => return Err(stream_error(e, io_args)),
    };
    // The header is authenticated now; no plaintext has been produced yet.
    let header = reader.header().clone();
    let (input_name, output_name) = names(io_args);
    let mut line = metadata::line("decrypt", &input_name, &output_name, &header);
    let unmet = unmet(&required, reader.encryption_context());
    if !unmet.reasons.is_empty() {
        if let Some(metadata) = &mut metadata {
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
        return Err(format!("not decrypted: {}", unmet.reasons.join("; ")).into());
    }
    reader
        .decrypt_into(&mut sink)
        .map_err(|e| stream_error(e, io_args))?;
    let plaintext = sink.count;
    sink.inner
        .finish()
        .map_err(|e| stream_error(envelope::Error::Io(e), io_args))?;
    output.commit()?;
    if let Some(metadata) = &mut metadata {
        metadata.write(&Value::Object(line))?;
    }
    report(io_args, "decrypted", &header, Some(plaintext));
    Ok(())
}

fn info(args: InfoArgs) -> Result<(), Failure> {
    let mut source = input(args.input.as_ref(), args.decode)?;
    let mut decoder = HeaderDecoder::new(HeaderLimits::default());
    let mut chunk = vec![0u8; 64 << 10];
    let header: Header = loop {
        let n = loop {
            match source.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            return Err("the input ends inside the header".into());
        }
        if let Parsed::Complete(header, _) = decoder.feed(&chunk[..n])? {
            break header;
        }
    };
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
