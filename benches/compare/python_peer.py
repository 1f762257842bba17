#!/usr/bin/env python3
"""One workload on the Python AWS Encryption SDK 4.0.7, for run.sh (same workloads and JSON line
as src/main.rs). Raw AES through RawMasterKey, the Python ESDK's fastest raw-key path; the
hierarchical keyring of the Material Providers Library 1.11.3 for the hier-* workloads.

usage: python_peer.py WORKLOAD [SECONDS]   (burst-64: 64 threads encrypt at once on an empty caching
                                           CMM whose master key takes 50 ms; prints master_key_calls)
       python_peer.py setup    (a KMS key, a key store table and a branch key on the emulator named by
                                AWS_ENDPOINT_URL_KMS / AWS_ENDPOINT_URL_DYNAMODB; prints
                                "KEY_ARN TABLE BRANCH_KEY_ID" for the hier-* workloads)
The hier-* workloads read ENVELOPE_COMPARE_KEY_ARN, ENVELOPE_COMPARE_TABLE and
ENVELOPE_COMPARE_BRANCH_KEY.
"""

import json
import os
import sys
import time

import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.caches.local import LocalCryptoMaterialsCache
from aws_encryption_sdk.identifiers import Algorithm, EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKey
from aws_encryption_sdk.materials_managers.caching import CachingCryptoMaterialsManager

KEY = bytes([0x42]) * 32
CONTEXT = {"purpose": "compare"}


def repeat(seconds, op):
    start, cpu0, n = time.time(), time.process_time(), 0
    while n < 3 or time.time() - start < seconds:
        op()
        n += 1
    return n, time.process_time() - cpu0


def hierarchy():
    """The MPL's key store over the emulator and a hierarchical keyring on the setup's branch key
    (TTL 600 s: every timed message finds the branch key cached)."""
    import boto3
    from aws_cryptographic_material_providers.keystore import KeyStore
    from aws_cryptographic_material_providers.keystore.config import KeyStoreConfig
    from aws_cryptographic_material_providers.keystore.models import KMSConfigurationKmsKeyArn
    from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
    from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
    from aws_cryptographic_material_providers.mpl.models import CreateAwsKmsHierarchicalKeyringInput

    table = os.environ["ENVELOPE_COMPARE_TABLE"]
    store = KeyStore(config=KeyStoreConfig(
        ddb_table_name=table, logical_key_store_name=table,
        kms_configuration=KMSConfigurationKmsKeyArn(os.environ["ENVELOPE_COMPARE_KEY_ARN"]),
        ddb_client=boto3.client("dynamodb"), kms_client=boto3.client("kms")))
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    return mpl.create_aws_kms_hierarchical_keyring(input=CreateAwsKmsHierarchicalKeyringInput(
        key_store=store, branch_key_id=os.environ["ENVELOPE_COMPARE_BRANCH_KEY"], ttl_seconds=600))


def setup():
    import boto3
    from aws_cryptographic_material_providers.keystore import KeyStore
    from aws_cryptographic_material_providers.keystore.config import KeyStoreConfig
    from aws_cryptographic_material_providers.keystore.models import (
        CreateKeyInput, CreateKeyStoreInput, KMSConfigurationKmsKeyArn)

    arn = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]
    table = f"envelope-compare-{os.getpid()}"
    store = KeyStore(config=KeyStoreConfig(
        ddb_table_name=table, logical_key_store_name=table,
        kms_configuration=KMSConfigurationKmsKeyArn(arn),
        ddb_client=boto3.client("dynamodb"), kms_client=boto3.client("kms")))
    store.create_key_store(CreateKeyStoreInput())
    print(arn, table, store.create_key(CreateKeyInput()).branch_key_identifier)


def main():
    if sys.argv[1] == "setup":
        return setup()
    workload = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    wall = time.time()
    key = RawMasterKey(provider_id="compare", key_id=b"key", wrapping_key=WrappingKey(
        wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
        wrapping_key=KEY, wrapping_key_type=EncryptionKeyType.SYMMETRIC))
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    ops, size, cpu, extra = 0, 0, 0.0, {}
    if workload == "burst-64":
        # 64 concurrent encrypts (threads) on an empty cache; the master key takes 50 ms a call.
        from concurrent.futures import ThreadPoolExecutor

        import threading

        class SlowKey(RawMasterKey):
            calls, lock = 0, threading.Lock()

            def _generate_data_key(self, algorithm, encryption_context):
                with SlowKey.lock:
                    SlowKey.calls += 1
                time.sleep(0.05)
                return super()._generate_data_key(algorithm, encryption_context)

        slow = SlowKey(provider_id="compare", key_id=b"key", wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=KEY, wrapping_key_type=EncryptionKeyType.SYMMETRIC))
        cmm = CachingCryptoMaterialsManager(master_key_provider=slow, cache=LocalCryptoMaterialsCache(100),
                                            max_age=600.0, max_messages_encrypted=1000)
        pt, size, cpu0 = b"\x07" * 1024, 1024, time.process_time()
        with ThreadPoolExecutor(64) as pool:
            list(pool.map(lambda _: client.encrypt(
                source=pt, materials_manager=cmm, encryption_context=CONTEXT,
                algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY), range(64)))
        ops, cpu, extra = 64, time.process_time() - cpu0, {"master_key_calls": SlowKey.calls}
    elif workload == "cache-1k-0478":
        cmm = CachingCryptoMaterialsManager(master_key_provider=key, cache=LocalCryptoMaterialsCache(100),
                                            max_age=600.0, max_messages_encrypted=1 << 32)
        pt = b"\x07" * 1024
        ops, cpu = repeat(seconds, lambda: client.encrypt(
            source=pt, materials_manager=cmm, encryption_context=CONTEXT,
            algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY))
        size = 1024
    elif workload.startswith("hier"):
        ring, pt, size = hierarchy(), b"\x07" * 1024, 1024

        def encrypt():
            return client.encrypt(source=pt, keyring=ring, encryption_context=CONTEXT,
                                  algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
                                  frame_length=4096)[0]
        message = encrypt()  # warms the branch-key cache (the active key)
        if workload.startswith("hierdec"):
            client.decrypt(source=message, keyring=ring)  # and the version it names
            ops, cpu = repeat(seconds, lambda: client.decrypt(source=message, keyring=ring))
        else:
            ops, cpu = repeat(seconds, encrypt)
    elif workload != "idle":
        op, sz, suite = workload.split("-")
        size = 1024 if sz == "1k" else 16 << 20
        alg = (Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 if suite == "0578"
               else Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY)
        pt = b"\x07" * size  # touched memory, like the Rust peers' vec![7; size]

        def encrypt():
            return client.encrypt(source=pt, key_provider=key, encryption_context=CONTEXT,
                                  algorithm=alg, frame_length=4096)[0]
        if op == "mem":
            encrypt()
            ops = 1
        elif op == "enc":
            ops, cpu = repeat(seconds, encrypt)
        else:
            message = encrypt()
            ops, cpu = repeat(seconds, lambda: client.decrypt(source=message, key_provider=key))
    print(json.dumps({"peer": "python", "workload": workload, "ops": ops, "bytes_per_op": size,
                      "cpu_s": cpu, "wall_s": time.time() - wall, **extra}))


if __name__ == "__main__":
    main()
