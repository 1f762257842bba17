"""The Python Material Providers Library's key store and hierarchical keyring (1.11.3, with the
Python ESDK 4.0.7), for interop with Envelope's DynamoDB key store and hierarchical keyring.

  create  --table T --key-arn A               create the key store table and a branch key; print its id
  version --table T --key-arn A --id B        rotate branch key B
  encrypt --table T --key-arn A --id B --dir D --count N --tag G
                                              encrypt N messages ("<G>-<i>", context {"tenant": G}) into
                                              D/<G>-<i>.ct with a fresh hierarchical keyring (TTL 600 s)
  decrypt --table T --key-arn A --id B --dir D
                                              decrypt every D/*.ct, require plaintext == its file stem
                                              and context tenant == its tag; print how many

Endpoints come from AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_KMS / _DYNAMODB: the emulator), the region
from AWS_DEFAULT_REGION; the logical key store name is the table name. Exits non-zero on any failure.
"""

import argparse
import pathlib
import sys

import aws_encryption_sdk
import boto3
from aws_cryptographic_material_providers.keystore import KeyStore
from aws_cryptographic_material_providers.keystore.config import KeyStoreConfig
from aws_cryptographic_material_providers.keystore.models import (
    CreateKeyInput,
    CreateKeyStoreInput,
    KMSConfigurationKmsKeyArn,
    VersionKeyInput,
)
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
from aws_cryptographic_material_providers.mpl.models import CreateAwsKmsHierarchicalKeyringInput
from aws_encryption_sdk import CommitmentPolicy


def key_store(table, key_arn):
    return KeyStore(
        config=KeyStoreConfig(
            ddb_table_name=table,
            kms_configuration=KMSConfigurationKmsKeyArn(key_arn),
            logical_key_store_name=table,
            ddb_client=boto3.client("dynamodb"),
            kms_client=boto3.client("kms"),
        )
    )


def keyring(store, branch_key_id):
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    return mpl.create_aws_kms_hierarchical_keyring(
        input=CreateAwsKmsHierarchicalKeyringInput(
            key_store=store, branch_key_id=branch_key_id, ttl_seconds=600
        )
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["create", "version", "encrypt", "decrypt"])
    parser.add_argument("--table", required=True)
    parser.add_argument("--key-arn", required=True)
    parser.add_argument("--id")
    parser.add_argument("--dir")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--tag", default="python")
    args = parser.parse_args()
    store = key_store(args.table, args.key_arn)
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    if args.mode == "create":
        store.create_key_store(CreateKeyStoreInput())
        print(store.create_key(CreateKeyInput()).branch_key_identifier)
    elif args.mode == "version":
        store.version_key(VersionKeyInput(branch_key_identifier=args.id))
    elif args.mode == "encrypt":
        ring = keyring(store, args.id)
        out = pathlib.Path(args.dir)
        out.mkdir(parents=True, exist_ok=True)
        for i in range(args.count):
            name = f"{args.tag}-{i}"
            ciphertext, _ = client.encrypt(
                source=name.encode(), keyring=ring, encryption_context={"tenant": args.tag}
            )
            (out / f"{name}.ct").write_bytes(ciphertext)
    else:
        ring = keyring(store, args.id)
        count = 0
        for path in sorted(pathlib.Path(args.dir).glob("*.ct")):
            plaintext, header = client.decrypt(source=path.read_bytes(), keyring=ring)
            if plaintext.decode() != path.stem:
                sys.exit(f"{path}: wrong plaintext")
            if header.encryption_context.get("tenant") != path.stem.rsplit("-", 1)[0]:
                sys.exit(f"{path}: wrong encryption context {header.encryption_context}")
            count += 1
        print(count)


if __name__ == "__main__":
    main()
