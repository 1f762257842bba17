"""A Kinesis producer and consumer shaped like the AWS Encryption SDK guidance's example, on the
released Python ESDK (4.0.7) and boto3, for interop with envelope-kinesis.

  produce --stream S --key-arn A --count N --out F   encrypt N records through a caching CMM
                                                     (max age 300 s, 100 messages per data key),
                                                     encryption context {"stream": S}, put them in
                                                     batches; write {partition key: base64 plaintext}
  consume --stream S --key-arn A --count N --out F   read every shard from TRIM_HORIZON until N
                                                     records arrived, decrypt each through a caching
                                                     CMM, require that its context names S; write
                                                     {partition key: base64 plaintext}

Endpoints come from AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_KMS / _KINESIS: the emulator), the region from
AWS_DEFAULT_REGION. Exits non-zero on any failure.
"""

import argparse
import base64
import json
import sys
import time

import aws_encryption_sdk
import boto3
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.caches.local import LocalCryptoMaterialsCache
from aws_encryption_sdk.materials_managers.caching import CachingCryptoMaterialsManager


def caching_cmm(key_arn):
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key_arn])
    return CachingCryptoMaterialsManager(
        master_key_provider=provider,
        cache=LocalCryptoMaterialsCache(capacity=100),
        max_age=300.0,
        max_messages_encrypted=100,
    )


def client():
    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )


def record_data(i):
    """Record i's plaintext: sizes from 0 B to ~20 KiB."""
    return (f"python record {i};".encode() * ((i * 37) % 1000))[: (i * 7919) % 20000]


def cmd_produce(args):
    kinesis = boto3.client("kinesis")
    cmm, esdk = caching_cmm(args.key_arn), client()
    written, batch = {}, []
    for i in range(args.count):
        data = record_data(i)
        ciphertext, _ = esdk.encrypt(
            source=data, materials_manager=cmm, encryption_context={"stream": args.stream}
        )
        key = f"py{i}"
        batch.append({"Data": ciphertext, "PartitionKey": key})
        written[key] = base64.b64encode(data).decode()
        if len(batch) == 500 or i == args.count - 1:
            pending = batch
            for _ in range(8):
                result = kinesis.put_records(StreamName=args.stream, Records=pending)
                pending = [r for r, out in zip(pending, result["Records"]) if "ErrorCode" in out]
                if not pending:
                    break
                time.sleep(0.1)
            if pending:
                sys.exit(f"{len(pending)} records were not put")
            batch = []
    with open(args.out, "w") as f:
        json.dump(written, f)
    print(f"produced {len(written)} records")


def cmd_consume(args):
    kinesis = boto3.client("kinesis")
    cmm, esdk = caching_cmm(args.key_arn), client()
    shards = kinesis.list_shards(StreamName=args.stream)["Shards"]
    iterators = {
        s["ShardId"]: kinesis.get_shard_iterator(
            StreamName=args.stream, ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for s in shards
    }
    read, idle = {}, 0
    while len(read) < args.count and idle < 50:
        got = 0
        for shard, iterator in list(iterators.items()):
            if iterator is None:
                continue
            out = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            iterators[shard] = out.get("NextShardIterator")
            for record in out["Records"]:
                plaintext, header = esdk.decrypt(source=record["Data"], materials_manager=cmm)
                if header.encryption_context.get("stream") != args.stream:
                    sys.exit(f"record {record['SequenceNumber']} names stream "
                             f"{header.encryption_context.get('stream')!r}, not {args.stream!r}")
                read[record["PartitionKey"]] = base64.b64encode(plaintext).decode()
                got += 1
        idle = 0 if got else idle + 1
        if not got:
            time.sleep(0.05)
    with open(args.out, "w") as f:
        json.dump(read, f)
    print(f"consumed {len(read)} records")
    if len(read) < args.count:
        sys.exit(f"only {len(read)} of {args.count} records arrived")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("produce", "consume"):
        p = sub.add_parser(name)
        p.add_argument("--stream", required=True)
        p.add_argument("--key-arn", required=True)
        p.add_argument("--count", type=int, required=True)
        p.add_argument("--out", required=True)
    args = parser.parse_args()
    {"produce": cmd_produce, "consume": cmd_consume}[args.command](args)


if __name__ == "__main__":
    main()
