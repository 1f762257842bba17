#!/usr/bin/env python3
"""Drive the released Python AWS Encryption SDK over test-vector manifests.

Envelope's interop tests run the same manifests through both implementations:

  keys     --out KEYS.json                 write a fresh keys manifest (AES-128/192/256, RSA-4096)
  matrix   --keys KEYS.json --out DIR      write the awses-encrypt manifests of the interop matrix
  encrypt  MANIFEST --out DIR [--stream]   encrypt an awses-encrypt manifest with the Python ESDK and
                                           write an awses-decrypt manifest (any ESDK can replay it)
  decrypt  MANIFEST [--stream]             decrypt every test of an awses-decrypt manifest (v2-v4)
  cache-ids --out CASES.json               cache ids the Python ESDK computes for random requests
  kms-matrix --out DIR                     create a key on the KMS emulator (AWS_ENDPOINT_URL_KMS) and
                                           write an awses-encrypt manifest using it

Output follows envelope-vectors: one line per failure and a closing "N passed, N failed, N skipped".
The exit status is non-zero if anything failed.
"""

import argparse
import base64
import functools
import itertools
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.identifiers import Algorithm, EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.base import MasterKeyProvider, MasterKeyProviderConfig
from aws_encryption_sdk.key_providers.raw import RawMasterKey

PROVIDER_ID = "envelope-interop"
SUITES = ["0014", "0046", "0078", "0114", "0146", "0178", "0214", "0346", "0378", "0478", "0578"]
ONE_MIB = 1 << 20

# Encryption contexts: none, ASCII, and keys/values outside the BMP (UTF-8 and UTF-16 orders differ:
# U+FF21 sorts before U+1F600 in UTF-8 bytes but after it in UTF-16 code units).
CONTEXTS = {
    "ec-empty": {},
    "ec-ascii": {"purpose": "interop", "tenant": "acme-corp", "a": "b"},
    "ec-nonbmp": {"\U0001F600 grin": "\U0001F510 locked", "\uFF21 fullwidth": "\U0001D518\U0001D52B", "z": "\u00e9t\u00e9"},
}


def raw(key, algorithm, padding=None, decryptable=None):
    desc = {"type": "raw", "key": key, "provider-id": PROVIDER_ID, "encryption-algorithm": algorithm}
    if padding == "pkcs1":
        desc["padding-algorithm"] = "pkcs1"
    elif padding:
        desc["padding-algorithm"] = "oaep-mgf1"
        desc["padding-hash"] = padding
    if decryptable is not None:
        desc["decryptable"] = decryptable
    return desc


KEYRINGS = {
    "aes128": [raw("aes-128", "aes")],
    "aes192": [raw("aes-192", "aes")],
    "aes256": [raw("aes-256", "aes")],
    "rsa-pkcs1": [raw("rsa-4096-private", "rsa", "pkcs1")],
    "rsa-oaep-sha1": [raw("rsa-4096-private", "rsa", "sha1")],
    "rsa-oaep-sha256": [raw("rsa-4096-private", "rsa", "sha256")],
    "rsa-oaep-sha384": [raw("rsa-4096-private", "rsa", "sha384")],
    "rsa-oaep-sha512": [raw("rsa-4096-private", "rsa", "sha512")],
    # AES generator plus an RSA child; the decryptor only gets the RSA key, so the RSA copy of the
    # data key is the one that must work.
    "multi-aes-rsa": [raw("aes-256", "aes", decryptable=False), raw("rsa-4096-private", "rsa", "sha256")],
}


# ----------------------------------------------------------------------------------------- keys

def cmd_keys(args):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    keys = {}
    for bits in (128, 192, 256):
        keys[f"aes-{bits}"] = {
            "encrypt": True, "decrypt": True, "algorithm": "aes", "type": "symmetric", "bits": bits,
            "encoding": "base64", "material": base64.b64encode(os.urandom(bits // 8)).decode(),
            "key-id": f"aes-{bits}",
        }
    # Both halves share one key id, as in the Dafny keys manifest.
    keys["rsa-4096-private"] = {
        "encrypt": True, "decrypt": True, "algorithm": "rsa", "type": "private", "bits": 4096,
        "encoding": "pem", "material": private_pem, "key-id": "rsa-4096",
    }
    keys["rsa-4096-public"] = {
        "encrypt": True, "decrypt": False, "algorithm": "rsa", "type": "public", "bits": 4096,
        "encoding": "pem", "material": public_pem, "key-id": "rsa-4096",
    }
    Path(args.out).write_text(json.dumps({"manifest": {"type": "keys", "version": 3}, "keys": keys}, indent=2))
    print(f"wrote {args.out}")


# --------------------------------------------------------------------------------------- matrix

def sizes_for(frame):
    return {"empty": 0, "one": 1, f"f{frame}-minus-1": frame - 1, f"f{frame}": frame,
            f"f{frame}-plus-1": frame + 1, f"f{frame}-times-3": 3 * frame}


def scenario(plaintext, suite, frame, context_name, keyring_name):
    return {"plaintext": plaintext, "algorithm": suite, "frame-size": frame,
            "encryption-context": CONTEXTS[context_name], "master-keys": KEYRINGS[keyring_name]}


def cross_product(frames, extra=lambda keyring_name, frame: []):
    """Every suite x keyring x frame length x context at the frame-boundary sizes, plus the sizes
    that extra(keyring name, frame length) names; returns (tests, plaintexts)."""
    tests, plaintexts = {}, {}
    for suite, kr, frame, ecn in itertools.product(SUITES, KEYRINGS, frames, CONTEXTS):
        sizes = sizes_for(frame)
        plaintexts.update(sizes)
        for name in list(sizes) + extra(kr, frame):
            tests[f"{suite}-{kr}-f{frame}-{ecn}-{name}"] = scenario(name, suite, frame, ecn, kr)
    return tests, plaintexts


def write_manifest(path, keys_uri, tests, plaintexts):
    manifest = {"manifest": {"type": "awses-encrypt", "version": 1}, "keys": keys_uri,
                "plaintexts": plaintexts, "tests": tests}
    Path(path).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    print(f"{path}: {len(tests)} scenarios")


def cmd_matrix(args):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keys_uri = "file://" + os.path.relpath(args.keys, out)

    # Both directions: every suite x keyring x frame length x context x size.
    tests, plaintexts = cross_product((128, 512, 4096), lambda kr, frame: ["1mib"])
    write_manifest(out / "both-ways.json", keys_uri, tests, {"1mib": ONE_MIB, **plaintexts})

    # Envelope only (the Python ESDK encrypts only multiples of 128): frame lengths 1 and 7.
    tests, plaintexts = cross_product((1, 7))
    # 1 MiB at frame length 1 is a million frames (about 25 s for Python to decrypt), so that size
    # runs once per suite and frame length, with AES-256 and the non-BMP context.
    for suite, frame in itertools.product(SUITES, (1, 7)):
        tests[f"{suite}-aes256-f{frame}-ec-nonbmp-1mib"] = scenario("1mib", suite, frame, "ec-nonbmp", "aes256")
    write_manifest(out / "envelope-only.json", keys_uri, tests, {"1mib": ONE_MIB, **plaintexts})

    # For the JS ESDK (interop/js), which spends about 60 us per frame: the both-ways cross product,
    # with 1 MiB at frame lengths 128 and 512 (8,192 and 2,048 frames, 0.1-0.5 s each in Node) under
    # AES-256 only; every keyring still wraps 1 MiB messages at frame length 4096.
    tests, plaintexts = cross_product(
        (128, 512, 4096), lambda kr, frame: ["1mib"] if frame == 4096 or kr == "aes256" else [])
    write_manifest(out / "js-both-ways.json", keys_uri, tests, {"1mib": ONE_MIB, **plaintexts})

    # Frame lengths 1 and 7 for the JS ESDK to decrypt (it writes them too): every suite, keyring
    # and context at the frame-boundary sizes, and 64 KiB (9,363 frames) at frame length 7.
    tests, plaintexts = cross_product((1, 7))
    for suite in SUITES:
        tests[f"{suite}-aes256-f7-ec-nonbmp-64kib"] = scenario("64kib", suite, 7, "ec-nonbmp", "aes256")
    write_manifest(out / "js-small-frames.json", keys_uri, tests, {"64kib": 65536, **plaintexts})

    # The required-encryption-context CMM, both directions: all keys or a subset required.
    tests, plaintexts = {}, {"empty": 0, "small": 100, "frames": 10000}
    for suite, kr, (ecn, ec), frame in itertools.product(
            SUITES, ("aes256", "rsa-oaep-sha256", "multi-aes-rsa"),
            [(n, c) for n, c in CONTEXTS.items() if c], (512, 4096)):
        for required_name, required in (("all", sorted(ec)), ("one", sorted(ec)[:1])):
            for name in plaintexts:
                tests[f"{suite}-{kr}-f{frame}-{ecn}-req-{required_name}-{name}"] = {
                    "plaintext": name, "algorithm": suite, "frame-size": frame,
                    "encryption-context": ec, "master-keys": KEYRINGS[kr],
                    "cmm": "RequiredEncryptionContext", "required-encryption-context-keys": required}
    write_manifest(out / "required-ec.json", keys_uri, tests, plaintexts)

    # For Envelope's caching CMM (encrypt --cache N): six messages per suite, keyring and context, so
    # that several messages share each cached data key (and signing key).
    tests, plaintexts = {}, {"empty": 0, "small": 10, "kib": 1024, "frame": 4096, "frames": 5000, "64kib": 65536}
    for suite, kr, (ecn, ec) in itertools.product(
            SUITES, ("aes256", "rsa-oaep-sha256", "multi-aes-rsa"), CONTEXTS.items()):
        for name in plaintexts:
            tests[f"{suite}-{kr}-{ecn}-{name}"] = {
                "plaintext": name, "algorithm": suite, "frame-size": 4096,
                "encryption-context": ec, "master-keys": KEYRINGS[kr]}
    write_manifest(out / "cached.json", keys_uri, tests, plaintexts)

    # Streaming, both directions (encrypt and decrypt --stream): empty, one frame, an exact
    # multiple of the frame, and 64 MiB.
    tests, plaintexts = {}, {"empty": 0, "one-frame": 4096, "three-frames": 3 * 4096, "64mib": 64 << 20}
    for suite, name in itertools.product(SUITES, plaintexts):
        tests[f"{suite}-aes256-f4096-ec-nonbmp-{name}"] = {
            "plaintext": name, "algorithm": suite, "frame-size": 4096,
            "encryption-context": CONTEXTS["ec-nonbmp"], "master-keys": KEYRINGS["aes256"]}
    write_manifest(out / "streaming.json", keys_uri, tests, plaintexts)


# ------------------------------------------------------------------------------------ cache ids

def cmd_kms_matrix(args):
    """A key on the KMS emulator (AWS_ENDPOINT_URL_KMS) and a manifest encrypting under it."""
    import boto3
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kms = boto3.client("kms", region_name=args.region)
    arn = kms.create_key(Description="envelope interop")["KeyMetadata"]["Arn"]
    keys = {"kms-key": {"type": "aws-kms", "key-id": arn, "encrypt": True, "decrypt": True}}
    (out / "kms-keys.json").write_text(json.dumps({"manifest": {"type": "keys", "version": 3}, "keys": keys}, indent=2))
    sizes = {"empty": 0, "one": 1, "f4096": 4096, "f4096-plus-1": 4097, "1mib": ONE_MIB}
    tests = {}
    for suite, (ecn, ec), name in itertools.product(SUITES, CONTEXTS.items(), sizes):
        tests[f"{suite}-kms-{ecn}-{name}"] = {
            "plaintext": name, "algorithm": suite, "frame-size": 4096, "encryption-context": ec,
            "master-keys": [{"type": "aws-kms", "key": "kms-key"}]}
    write_manifest(out / "kms.json", "file://kms-keys.json", tests, sizes)


def cmd_cache_ids(args):
    """Cache ids computed by the Python ESDK's own functions for random requests."""
    import random
    from aws_encryption_sdk.caches import (
        build_decryption_materials_cache_key, build_encryption_materials_cache_key)
    from aws_encryption_sdk.materials_managers import (
        DecryptionMaterialsRequest, EncryptionMaterialsRequest)
    from aws_encryption_sdk.structures import EncryptedDataKey, MasterKeyInfo

    rng = random.Random(args.seed)
    alphabet = ["a", "b", "Z", "0", "-", "\u00e9", "\u20ac", "\uff21", "\U0001F600", "\U0001D518"]

    def text(lo=1, hi=12):
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))

    cases = []
    for i in range(args.count):
        partition = text(0, 40)
        ec = {text(): text() for _ in range(rng.randint(0, 6))}
        suites = rng.sample(SUITES, 3)
        edks = []
        for _ in range(rng.randint(1, 4)):
            edks.append((text(1, 10), os.urandom(rng.randint(0, 40)), os.urandom(rng.randint(1, 80))))
        case = {"partition_id": partition, "encryption_context": ec,
                "decrypt_edks": [[p, info.hex(), ct.hex()] for p, info, ct in edks]}
        request = EncryptionMaterialsRequest(encryption_context=ec, frame_length=4096)
        case["encrypt_no_suite_sha512_hex"] = build_encryption_materials_cache_key(
            partition.encode(), request).hex()
        for suite in suites:
            algorithm = Algorithm.get_by_id(int(suite, 16))
            request = EncryptionMaterialsRequest(encryption_context=ec, frame_length=4096, algorithm=algorithm)
            case[f"encrypt_suite_{suite}_sha512_hex"] = build_encryption_materials_cache_key(
                partition.encode(), request).hex()
            request = DecryptionMaterialsRequest(
                algorithm=algorithm, encryption_context=ec,
                encrypted_data_keys={EncryptedDataKey(key_provider=MasterKeyInfo(provider_id=p, key_info=info),
                                                      encrypted_data_key=ct) for p, info, ct in edks})
            case[f"decrypt_suite_{suite}_sha512_hex"] = build_decryption_materials_cache_key(
                partition.encode(), request).hex()
        cases.append(case)
    Path(args.out).write_text(json.dumps(cases, indent=1, ensure_ascii=False))
    print(f"wrote {len(cases)} cases ({len(cases) * 7} ids) to {args.out}")


# ------------------------------------------------------------------------------ keys and keyrings

def uri_path(base, uri):
    assert uri.startswith("file://"), uri
    return (Path(base) / uri[len("file://"):]).resolve()


RSA_WRAPPING = {
    None: WrappingAlgorithm.RSA_PKCS1,
    "pkcs1": WrappingAlgorithm.RSA_PKCS1,
    "sha1": WrappingAlgorithm.RSA_OAEP_SHA1_MGF1,
    "sha256": WrappingAlgorithm.RSA_OAEP_SHA256_MGF1,
    "sha384": WrappingAlgorithm.RSA_OAEP_SHA384_MGF1,
    "sha512": WrappingAlgorithm.RSA_OAEP_SHA512_MGF1,
}
AES_WRAPPING = {
    16: WrappingAlgorithm.AES_128_GCM_IV12_TAG16_NO_PADDING,
    24: WrappingAlgorithm.AES_192_GCM_IV12_TAG16_NO_PADDING,
    32: WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
}
MPL_RSA_PADDING = {"pkcs1": "PKCS1", "sha1": "OAEP_SHA1_MGF1", "sha256": "OAEP_SHA256_MGF1",
                   "sha384": "OAEP_SHA384_MGF1", "sha512": "OAEP_SHA512_MGF1"}


def material(entry):
    m = entry["material"]
    if isinstance(m, list):
        m = entry.get("line-separator", "").join(m)
    return m


def rsa_padding(desc):
    if desc.get("padding-algorithm") == "pkcs1":
        return "pkcs1"
    return desc.get("padding-hash")


@functools.lru_cache(maxsize=None)
def wrapping_key(keys_path, desc_json):
    """The parsed wrapping key of one master-key description (RSA parsing is slow: cached)."""
    desc = json.loads(desc_json)
    entry = load_keys(keys_path)[desc["key"]]
    if desc["encryption-algorithm"] == "aes":
        key = base64.b64decode(material(entry))
        return WrappingKey(wrapping_algorithm=AES_WRAPPING[len(key)], wrapping_key=key,
                           wrapping_key_type=EncryptionKeyType.SYMMETRIC)
    key_type = EncryptionKeyType.PRIVATE if entry["type"] == "private" else EncryptionKeyType.PUBLIC
    return WrappingKey(wrapping_algorithm=RSA_WRAPPING[rsa_padding(desc)],
                       wrapping_key=material(entry).encode(), wrapping_key_type=key_type)


@functools.lru_cache(maxsize=None)
def load_keys(keys_path):
    return json.loads(Path(keys_path).read_text())["keys"]


def key_id(keys_path, desc):
    entry = load_keys(keys_path)[desc["key"]]
    return entry.get("key-id", desc["key"])


class CompositeProvider(MasterKeyProvider):
    """Holds several master keys. (A master key's own add_master_key_provider is not enough: a
    MasterKey encrypts with itself only.)"""

    provider_id = "envelope-interop-composite"
    vend_masterkey_on_decrypt = False
    _config_class = MasterKeyProviderConfig

    def _new_master_key(self, key_id):
        raise NotImplementedError("a composite provider only holds the keys it was given")


def master_key_provider(keys_path, descs):
    """A master-key provider: the first key generates, the others also wrap the data key."""
    keys = [RawMasterKey(provider_id=d["provider-id"], key_id=key_id(keys_path, d).encode(),
                         wrapping_key=wrapping_key(keys_path, json.dumps(d, sort_keys=True)))
            for d in descs]
    if len(keys) == 1:
        return keys[0]
    provider = CompositeProvider()
    for key in keys:
        provider.add_master_key_provider(key)
    return provider


def is_kms(descs):
    return len(descs) == 1 and descs[0]["type"] == "aws-kms"


def kms_keyring(keys_path, desc):
    """The MPL's AWS KMS keyring for a key ARN; boto3 honours AWS_ENDPOINT_URL_KMS (the emulator)."""
    import boto3
    from aws_cryptographic_material_providers.mpl.models import CreateAwsKmsKeyringInput
    arn = key_id(keys_path, desc)
    client = boto3.client("kms", region_name=arn.split(":")[3])
    return mpl().create_aws_kms_keyring(input=CreateAwsKmsKeyringInput(kms_key_id=arn, kms_client=client))


@functools.lru_cache(maxsize=None)
def mpl():
    from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
    from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
    return AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())


def mpl_keyring(keys_path, desc):
    from aws_cryptographic_material_providers.mpl.models import (
        CreateRawAesKeyringInput, CreateRawRsaKeyringInput)
    entry = load_keys(keys_path)[desc["key"]]
    name = key_id(keys_path, desc)
    if desc["encryption-algorithm"] == "aes":
        key = base64.b64decode(material(entry))
        return mpl().create_raw_aes_keyring(CreateRawAesKeyringInput(
            key_namespace=desc["provider-id"], key_name=name, wrapping_key=key,
            wrapping_alg=f"ALG_AES{len(key) * 8}_GCM_IV12_TAG16"))
    pem = material(entry).encode()
    if entry["type"] == "private":
        public = public_pem_of(keys_path, name)
        return mpl().create_raw_rsa_keyring(CreateRawRsaKeyringInput(
            key_namespace=desc["provider-id"], key_name=name,
            padding_scheme=MPL_RSA_PADDING[rsa_padding(desc)], private_key=pem, public_key=public))
    return mpl().create_raw_rsa_keyring(CreateRawRsaKeyringInput(
        key_namespace=desc["provider-id"], key_name=name,
        padding_scheme=MPL_RSA_PADDING[rsa_padding(desc)], public_key=pem))


def public_pem_of(keys_path, name):
    for entry in load_keys(keys_path).values():
        if entry.get("type") == "public" and entry.get("key-id") == name:
            return material(entry).encode()
    return None


def required_ec_cmm(keys_path, descs, required):
    return _required_ec_cmm(keys_path, json.dumps(descs, sort_keys=True), tuple(required))


@functools.lru_cache(maxsize=None)
def _required_ec_cmm(keys_path, descs_json, required):
    """One CMM per keyring description and required keys, per process: building MPL RSA keyrings
    parses and validates the RSA key, which is slow."""
    descs = json.loads(descs_json)
    from aws_cryptographic_material_providers.mpl.models import (
        CreateDefaultCryptographicMaterialsManagerInput, CreateMultiKeyringInput,
        CreateRequiredEncryptionContextCMMInput)
    keyrings = [mpl_keyring(keys_path, d) for d in descs]
    keyring = keyrings[0] if len(keyrings) == 1 else mpl().create_multi_keyring(
        CreateMultiKeyringInput(generator=keyrings[0], child_keyrings=keyrings[1:]))
    underlying = mpl().create_default_cryptographic_materials_manager(
        CreateDefaultCryptographicMaterialsManagerInput(keyring=keyring))
    return mpl().create_required_encryption_context_cmm(CreateRequiredEncryptionContextCMMInput(
        underlying_cmm=underlying, required_encryption_context_keys=list(required)))


def policy_for(suite_hex):
    if suite_hex in ("0478", "0578"):
        return CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    return CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT


# -------------------------------------------------------------------------------------- encrypt

def encrypt_one(job):
    test_id, test, keys_path, out, plaintext_path, stream = job
    try:
        if stream:
            return encrypt_streaming(test_id, test, keys_path, out, plaintext_path)
        plaintext = Path(plaintext_path).read_bytes()
        suite_hex = test["algorithm"]
        client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=policy_for(suite_hex))
        kwargs = dict(source=plaintext, encryption_context=test["encryption-context"],
                      algorithm=Algorithm.get_by_id(int(suite_hex, 16)), frame_length=test["frame-size"])
        if test.get("cmm") == "RequiredEncryptionContext":
            required = test.get("required-encryption-context-keys", sorted(test["encryption-context"]))
            kwargs["materials_manager"] = required_ec_cmm(keys_path, test["master-keys"], required)
        elif is_kms(test["master-keys"]):
            kwargs["keyring"] = kms_keyring(keys_path, test["master-keys"][0])
        else:
            kwargs["key_provider"] = master_key_provider(keys_path, test["master-keys"])
        ciphertext, _ = client.encrypt(**kwargs)
        (Path(out) / "ciphertexts" / test_id).write_bytes(ciphertext)
        return test_id, None
    except Exception as e:  # report, do not crash the pool
        return test_id, f"{type(e).__name__}: {e}"


def encrypt_streaming(test_id, test, keys_path, out, plaintext_path):
    """Encrypt with the Python ESDK's streaming API, from file to file."""
    suite_hex = test["algorithm"]
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=policy_for(suite_hex))
    provider = master_key_provider(keys_path, test["master-keys"])
    with open(plaintext_path, "rb") as source, open(Path(out) / "ciphertexts" / test_id, "wb") as sink:
        with client.stream(mode="e", source=source, key_provider=provider,
                           encryption_context=test["encryption-context"], frame_length=test["frame-size"],
                           algorithm=Algorithm.get_by_id(int(suite_hex, 16))) as encryptor:
            for chunk in encryptor:
                sink.write(chunk)
    return test_id, None


def cmd_encrypt(args):
    manifest_path = Path(args.manifest).resolve()
    doc = json.loads(manifest_path.read_text())
    assert doc["manifest"]["type"] == "awses-encrypt", "not an awses-encrypt manifest"
    out = Path(args.out).resolve()
    (out / "ciphertexts").mkdir(parents=True, exist_ok=True)
    (out / "plaintexts").mkdir(parents=True, exist_ok=True)
    keys_path = str(uri_path(manifest_path.parent, doc["keys"]))
    (out / "keys.json").write_text(Path(keys_path).read_text())
    for name, size in doc["plaintexts"].items():
        (out / "plaintexts" / name).write_bytes(os.urandom(size))
    jobs = [(tid, t, keys_path, str(out), str(out / "plaintexts" / t["plaintext"]), args.stream)
            for tid, t in doc["tests"].items()]
    any_required = any(t.get("cmm") == "RequiredEncryptionContext" for _, t, *_ in jobs)
    failures, entries = [], {}
    with multiprocessing.Pool(os.cpu_count()) as pool:
        for test_id, error in pool.imap_unordered(encrypt_one, jobs, chunksize=4):
            test = doc["tests"][test_id]
            if error:
                failures.append(f"{test_id}: {error}")
                continue
            entry = {
                "ciphertext": f"file://ciphertexts/{test_id}",
                "master-keys": [{k: v for k, v in d.items() if k != "decryptable"}
                                for d in test["master-keys"] if d.get("decryptable", True)],
                "result": {"output": {"plaintext": f"file://plaintexts/{test['plaintext']}"}},
                "encryption-context": test["encryption-context"],
            }
            if any_required:
                entry["cmm"] = test.get("cmm", "Default")
            entries[test_id] = entry
    manifest = {"manifest": {"type": "awses-decrypt", "version": 4 if any_required else 2},
                "client": {"name": "aws/aws-encryption-sdk-python",
                           "version": aws_encryption_sdk.__version__},
                "keys": "file://keys.json", "tests": dict(sorted(entries.items()))}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    for failure in sorted(failures):
        print(f"FAIL {failure}")
    print(f"{len(entries)} encrypted, {len(failures)} failed, 0 skipped")
    return 1 if failures else 0


# -------------------------------------------------------------------------------------- decrypt

def decrypt_one(job):
    """Decrypt one test's message; (test id, None) when the outcome is the expected one."""
    test_id, test, keys_path, base, stream = job
    attempt = decrypt_streaming if stream else decrypt_whole
    try:
        problem = attempt(test, keys_path, base)
    except Exception as e:
        if "error" in test["result"]:
            return test_id, None
        return test_id, f"expected success, got {type(e).__name__}: {e}"
    if "error" in test["result"]:
        return test_id, "expected an error, but decryption succeeded"
    return test_id, problem


def decrypt_whole(test, keys_path, base):
    """Decrypt a whole message; None when it decrypts to the expected plaintext."""
    ciphertext = uri_path(base, test["ciphertext"]).read_bytes()
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
    if test.get("cmm") == "RequiredEncryptionContext":
        ec = test["encryption-context"]
        cmm = required_ec_cmm(keys_path, test["master-keys"], sorted(ec))
        plaintext, _ = client.decrypt(source=ciphertext, materials_manager=cmm, encryption_context=ec)
    elif is_kms(test["master-keys"]):
        keyring = kms_keyring(keys_path, test["master-keys"][0])
        plaintext, _ = client.decrypt(source=ciphertext, keyring=keyring)
    else:
        provider = master_key_provider(keys_path, test["master-keys"])
        plaintext, _ = client.decrypt(source=ciphertext, key_provider=provider)
    expected = uri_path(base, test["result"]["output"]["plaintext"]).read_bytes()
    return None if plaintext == expected else "decrypted to the wrong plaintext"


def decrypt_streaming(test, keys_path, base):
    """Decrypt with the Python ESDK's streaming API, comparing chunk by chunk."""
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
    provider = master_key_provider(keys_path, test["master-keys"])
    with open(uri_path(base, test["ciphertext"]), "rb") as source:
        with client.stream(mode="d", source=source, key_provider=provider) as decryptor:
            chunks = list(decryptor)
    # Read the expected plaintext only for a message that decrypted (an error test has none).
    with open(uri_path(base, test["result"]["output"]["plaintext"]), "rb") as expected:
        for chunk in chunks:
            if expected.read(len(chunk)) != chunk:
                return "decrypted to the wrong plaintext"
        if expected.read(1):
            return "the decrypted plaintext is too short"
    return None


def cmd_decrypt(args):
    manifest_path = Path(args.manifest).resolve()
    doc = json.loads(manifest_path.read_text())
    assert doc["manifest"]["type"] == "awses-decrypt", "not an awses-decrypt manifest"
    version = doc["manifest"]["version"]
    assert 2 <= version <= 4, f"unsupported awses-decrypt version {version}"
    base = manifest_path.parent
    keys_path = str(uri_path(base, doc["keys"]))
    jobs = [(tid, t, keys_path, base, args.stream) for tid, t in doc["tests"].items()]
    failures, passed = [], 0
    with multiprocessing.Pool(os.cpu_count()) as pool:
        for test_id, failure in pool.imap_unordered(decrypt_one, jobs, chunksize=4):
            if failure:
                failures.append(f"{test_id}: {failure}")
            else:
                passed += 1
    for failure in sorted(failures):
        print(f"FAIL {failure}")
    print(f"{passed} passed, {len(failures)} failed, 0 skipped")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("keys"); p.add_argument("--out", required=True)
    p = sub.add_parser("matrix"); p.add_argument("--keys", required=True); p.add_argument("--out", required=True)
    p = sub.add_parser("encrypt"); p.add_argument("manifest"); p.add_argument("--out", required=True)
    p.add_argument("--stream", action="store_true", help="use the streaming API")
    p = sub.add_parser("decrypt"); p.add_argument("manifest")
    p.add_argument("--stream", action="store_true", help="use the streaming API")
    p = sub.add_parser("kms-matrix"); p.add_argument("--out", required=True)
    p.add_argument("--region", default="us-west-2")
    p = sub.add_parser("cache-ids"); p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, default=100); p.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    start = time.time()
    commands = {"keys": cmd_keys, "matrix": cmd_matrix, "encrypt": cmd_encrypt, "decrypt": cmd_decrypt,
                "cache-ids": cmd_cache_ids, "kms-matrix": cmd_kms_matrix}
    status = commands[args.command](args) or 0
    print(f"({args.command} took {time.time() - start:.1f}s)", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
