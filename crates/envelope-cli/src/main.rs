//! `envelope`: encrypt and decrypt files and pipes in the AWS Encryption SDK message format.
//!
//! Everything streams: memory stays around twice the frame length whatever the input size.
#![allow(clippy::print_stderr)]

mod output;

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use base64::Engine;
use clap::{Args, Parser, Subcommand, ValueEnum};
use envelope::blocking::Client;
use envelope::format::{Header, HeaderDecoder, HeaderLimits, Parsed};
use envelope::{
    AlgorithmSuite, CommitmentPolicy, EncryptionContext, Keyring, MultiKeyring, RawAesKeyring,
    RawRsaKeyring, RsaPadding, SecretBytes,
};

/// A demo wrapping key, compiled in so that the tool can be tried without any setup. It is public:
/// never protect real data with it.
const DEMO_KEY: [u8; 32] = *b"envelope-cli-demo-key-NOT-SECRET";

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
    Info {
        /// The message (default stdin).
        #[arg(short, long)]
        input: Option<PathBuf>,
    },
}

#[derive(Args)]
struct Keys {
    /// Use the embedded demo key (public; for trying the tool only).
    #[arg(long)]
    demo_key: bool,
    /// A raw AES wrapping key: a file of 16, 24 or 32 bytes, or of their Base64 or hex text
    /// (see --aes-key-format).
    #[arg(long, value_name = "FILE")]
    aes_key: Vec<PathBuf>,
    /// How --aes-key files are written. `auto` takes a file that is the hex or Base64 text of a
    /// 16, 24 or 32-byte key as that text, any other file of 16, 24 or 32 bytes as raw bytes, and
    /// refuses a file that could be either (such as 32 hex digits without a newline).
    #[arg(long, value_enum, default_value_t = KeyFormat::Auto)]
    aes_key_format: KeyFormat,
    /// An RSA public key (PEM) to wrap data keys for.
    #[arg(long, value_name = "FILE")]
    rsa_public_key: Vec<PathBuf>,
    /// An RSA private key (PEM, PKCS#8) to unwrap data keys with.
    #[arg(long, value_name = "FILE")]
    rsa_private_key: Vec<PathBuf>,
    /// RSA padding.
    #[arg(long, value_enum, default_value_t = Padding::OaepSha256)]
    rsa_padding: Padding,
    /// The key namespace written into messages (the provider id).
    #[arg(long, default_value = "envelope-cli")]
    key_namespace: String,
    /// The key name written into messages; defaults to the key file's name.
    #[arg(long)]
    key_name: Option<String>,
}

#[derive(Args)]
struct Io {
    /// Read from this file instead of stdin.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Write to this file instead of stdout (written to a temporary file, renamed on success).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// An encryption context pair KEY=VALUE (repeatable).
    #[arg(short = 'c', long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
    /// Commitment policy.
    #[arg(long, value_enum, default_value_t = Policy::RequireEncryptRequireDecrypt)]
    commitment_policy: Policy,
    /// The largest frame length to write or to stream (default 64 MiB): encrypting with longer
    /// frames, or decrypting a message that has them, fails before any key is used.
    #[arg(long, value_name = "BYTES", default_value_t = envelope::DEFAULT_MAX_FRAME_LENGTH)]
    max_frame_length: u32,
    /// Hash signed messages on the calling thread only (by default large signed messages hash on
    /// a second core while the first encrypts).
    #[arg(long)]
    single_core: bool,
}

#[derive(Args)]
struct EncryptArgs {
    #[command(flatten)]
    keys: Keys,
    #[command(flatten)]
    io: Io,
    /// Algorithm suite: its id in hex (e.g. 0578) or ESDK name (default: the commitment
    /// policy's).
    #[arg(long)]
    suite: Option<AlgorithmSuite>,
    /// Frame length in bytes (1 to the maximum frame length).
    #[arg(long, default_value_t = envelope::DEFAULT_FRAME)]
    frame_length: std::num::NonZeroU32,
}

#[derive(Args)]
struct DecryptArgs {
    #[command(flatten)]
    keys: Keys,
    #[command(flatten)]
    io: Io,
    /// Refuse signed messages, so that every byte written is final when it is written.
    #[arg(long)]
    unsigned_only: bool,
}

type Failure = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Encrypt(args) => encrypt(args),
        Command::Decrypt(args) => decrypt(args),
        Command::Info { input } => info(input),
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

fn key_name(keys: &Keys, path: &Path) -> String {
    keys.key_name.clone().unwrap_or_else(|| {
        path.file_name()
            .map_or_else(|| "key".to_string(), |n| n.to_string_lossy().into_owned())
    })
}

/// How an `--aes-key` file is written, as `--aes-key-format` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum KeyFormat {
    /// Decide by content; refuse a file that is both a raw key and the text of one.
    Auto,
    /// The file's bytes are the key.
    Raw,
    /// Hex text (surrounding white space ignored).
    Hex,
    /// Base64 text (surrounding white space ignored).
    Base64,
}

fn is_key_len(len: usize) -> bool {
    matches!(len, 16 | 24 | 32)
}

/// The key the text of `bytes` spells in `format` (hex or Base64), if it is a key's length.
fn decode_key(bytes: &[u8], format: KeyFormat) -> Option<SecretBytes> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let decoded = match format {
        KeyFormat::Hex => hex::decode(text).ok()?,
        KeyFormat::Base64 => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?,
        KeyFormat::Auto | KeyFormat::Raw => return None,
    };
    let decoded = SecretBytes::new(decoded);
    is_key_len(decoded.len()).then_some(decoded)
}

fn read_aes_key(path: &Path, format: KeyFormat) -> Result<SecretBytes, Failure> {
    let bytes =
        SecretBytes::new(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let bytes = bytes.expose_secret();
    let raw = is_key_len(bytes.len()).then(|| SecretBytes::from_slice(bytes));
    let text = decode_key(bytes, KeyFormat::Hex).or_else(|| decode_key(bytes, KeyFormat::Base64));
    let key = match format {
        KeyFormat::Raw => raw.ok_or_else(|| {
            format!(
                "{}: a raw key is 16, 24 or 32 bytes; this file has {}",
                path.display(),
                bytes.len()
            )
        })?,
        KeyFormat::Hex | KeyFormat::Base64 => decode_key(bytes, format).ok_or_else(|| {
            format!(
                "{}: not the {} text of a 16, 24 or 32-byte key",
                path.display(),
                if format == KeyFormat::Hex {
                    "hex"
                } else {
                    "Base64"
                }
            )
        })?,
        KeyFormat::Auto => match (raw, text) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{}: {} bytes that are also the hex or Base64 text of a key; say which with \
                     --aes-key-format raw, hex or base64",
                    path.display(),
                    bytes.len()
                )
                .into());
            }
            (Some(key), None) | (None, Some(key)) => key,
            (None, None) => {
                return Err(format!(
                    "{}: not a 16, 24 or 32-byte key, nor its hex or Base64",
                    path.display()
                )
                .into());
            }
        },
    };
    Ok(key)
}

/// RSA paddings, as `--rsa-padding` names them.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Padding {
    Pkcs1,
    OaepSha1,
    OaepSha256,
    OaepSha384,
    OaepSha512,
}

impl From<Padding> for RsaPadding {
    fn from(padding: Padding) -> Self {
        match padding {
            Padding::Pkcs1 => Self::Pkcs1v15,
            Padding::OaepSha1 => Self::OaepSha1,
            Padding::OaepSha256 => Self::OaepSha256,
            Padding::OaepSha384 => Self::OaepSha384,
            Padding::OaepSha512 => Self::OaepSha512,
        }
    }
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

/// One keyring per key given; several make a multi-keyring (the first one generates).
fn keyring(keys: &Keys) -> Result<Arc<dyn Keyring>, Failure> {
    let mut rings: Vec<Arc<dyn Keyring>> = Vec::new();
    if keys.demo_key {
        let _ = writeln!(
            io::stderr(),
            "envelope: using the public demo key: never protect real data with it"
        );
        let ns = keys.key_namespace.clone();
        rings.push(Arc::new(RawAesKeyring::new(
            ns,
            "demo-key",
            SecretBytes::from_slice(&DEMO_KEY),
        )?));
    }
    for path in &keys.aes_key {
        let key = read_aes_key(path, keys.aes_key_format)?;
        rings.push(Arc::new(RawAesKeyring::new(
            keys.key_namespace.clone(),
            key_name(keys, path),
            key,
        )?));
    }
    let padding = RsaPadding::from(keys.rsa_padding);
    for path in &keys.rsa_public_key {
        let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = key_name(keys, path);
        let keyring = RawRsaKeyring::encrypt_only(keys.key_namespace.clone(), name, padding, &pem)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        rings.push(Arc::new(keyring));
    }
    for path in &keys.rsa_private_key {
        let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = key_name(keys, path);
        let keyring = RawRsaKeyring::decrypt_only(keys.key_namespace.clone(), name, padding, &pem)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        rings.push(Arc::new(keyring));
    }
    match rings.len() {
        0 => Err(
            "no key given: use --aes-key, --rsa-public-key, --rsa-private-key or --demo-key".into(),
        ),
        1 => Ok(rings.remove(0)),
        _ => {
            let generator = rings.remove(0);
            Ok(Arc::new(MultiKeyring::new(Some(generator), rings)?))
        }
    }
}

fn context(pairs: &[String]) -> Result<EncryptionContext, Failure> {
    let mut ec = EncryptionContext::new();
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("context {pair:?} is not KEY=VALUE"))?;
        if ec.contains_key(k) {
            return Err(format!("context key {k:?} is given more than once").into());
        }
        ec.insert(k, v);
    }
    Ok(ec)
}

fn client(io_args: &Io) -> Result<Client, Failure> {
    let policy = CommitmentPolicy::from(io_args.commitment_policy);
    let single_core = io_args.single_core;
    let builder = envelope::Client::builder()
        .commitment_policy(policy)
        .max_frame_length(io_args.max_frame_length)
        .signature_hashing(if single_core {
            envelope::SignatureHashing::Inline
        } else {
            envelope::SignatureHashing::for_this_machine()
        });
    Ok(Client::from(builder.build()))
}

fn input(path: Option<&PathBuf>) -> Result<Box<dyn Read>, Failure> {
    Ok(match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => Box::new(BufReader::new(
            File::open(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        None => Box::new(io::stdin().lock()),
    })
}

fn encrypt(args: EncryptArgs) -> Result<(), Failure> {
    // Every argument is checked, and the input opened, before any output file is created.
    let keyring = keyring(&args.keys)?;
    let client = client(&args.io)?;
    let encryption_context = context(&args.io.context)?;
    let suite = args.suite;
    let source = input(args.io.input.as_ref())?;
    let destination = output::Destination::check(args.io.output.as_deref())?;
    let (output, sink) = destination.open()?;
    let mut request = client
        .encrypt_stream(&keyring, sink)
        .encryption_context(encryption_context)
        .frame_length(args.frame_length);
    if let Some(suite) = suite {
        request = request.suite(suite);
    }
    let written = request
        .run()
        .and_then(|writer| writer.encrypt_from(source))
        .and_then(|mut sink| Ok(sink.flush()?));
    // Dropping `output` on the error path removes the temporary file.
    written.map_err(|e| stream_error(e, &args.io))?;
    Ok(output.commit()?)
}

/// Name what failed: writing to a closed standard output is said plainly.
fn stream_error(e: envelope::Error, io_args: &Io) -> Failure {
    match &e {
        envelope::Error::Io(io)
            if io.kind() == io::ErrorKind::BrokenPipe && io_args.output.is_none() =>
        {
            "standard output was closed before the output was complete".into()
        }
        _ => e.into(),
    }
}

fn decrypt(args: DecryptArgs) -> Result<(), Failure> {
    let keyring = keyring(&args.keys)?;
    let client = client(&args.io)?;
    let expected = if args.io.context.is_empty() {
        None
    } else {
        Some(context(&args.io.context)?)
    };
    let source = input(args.io.input.as_ref())?;
    let destination = output::Destination::check(args.io.output.as_deref())?;
    let (output, sink) = destination.open()?;
    let mut request = client.decrypt_stream(&keyring, source);
    if let Some(expected) = expected {
        request = request.encryption_context(expected);
    }
    if args.unsigned_only {
        request = request.unsigned_only();
    }
    let written = request.run().and_then(|reader| reader.decrypt_into(sink));
    // Dropping `output` on the error path removes the temporary file and its plaintext.
    written.map_err(|e| stream_error(e, &args.io))?;
    Ok(output.commit()?)
}

fn info(path: Option<PathBuf>) -> Result<(), Failure> {
    let mut source = input(path.as_ref())?;
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
    match print_header(&header, &mut BufWriter::new(io::stdout().lock())) {
        // The reader stopped reading (`| head`): not a failure of ours.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing to standard output: {e}").into()),
        Ok(()) => Ok(()),
    }
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
            "encrypted data key: provider {:?}, info {:?}, {} bytes",
            edk.provider_id(),
            String::from_utf8_lossy(edk.provider_info()),
            edk.ciphertext().len()
        )?;
    }
    writeln!(
        out,
        "(the header is not authenticated until a key decrypts the message)"
    )?;
    out.flush()
}
