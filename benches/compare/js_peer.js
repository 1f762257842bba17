#!/usr/bin/env node
// One workload on the JavaScript AWS Encryption SDK (@aws-crypto/client-node 5.0.2, installed by
// scripts/js-env.sh), for run.sh: the same workloads and JSON line as src/main.rs. Raw AES keyring
// (RawAesKeyringNode with utf8Sorting), frame length 4096, the one-shot encrypt/decrypt API.
//
// usage: js_peer.js WORKLOAD [SECONDS]
// workloads: enc|dec-1k|16m-0478|0578, cache-1k-0478 (NodeCachingMaterialsManager, every
//            message after the first a cache hit), hier-1k-0478 / hierdec-1k-0478
//            (KmsHierarchicalKeyRingNode over the key store that `python_peer.py setup` made on the
//            emulator, named by ENVELOPE_COMPARE_KEY_ARN / _TABLE / _BRANCH_KEY; warm branch-key
//            cache, TTL 600 s), burst-64 (64 concurrent encrypts on an empty
//            cache, the master key taking 50 ms: prints the master-key calls made), mem-16m-0578,
//            idle
'use strict'

const {
  buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier, AlgorithmSuiteIdentifier,
  NodeCachingMaterialsManager, getLocalCryptographicMaterialsCache, KeyringNode, BranchKeyStoreNode,
  KmsHierarchicalKeyRingNode,
} = require('@aws-crypto/client-node')

const CONTEXT = { purpose: 'compare' }
const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)

function keyring () {
  return new RawAesKeyringNode({
    keyName: 'key', keyNamespace: 'compare', unencryptedMasterKey: new Uint8Array(32).fill(0x42),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING, utf8Sorting: true,
  })
}

// A master key that takes `latencyMs` per call and counts its calls.
class SlowKeyring extends KeyringNode {
  constructor (inner, latencyMs) {
    super()
    this.inner = inner
    this.latencyMs = latencyMs
    this.calls = 0
  }

  async _onEncrypt (material) {
    this.calls++
    await new Promise((resolve) => setTimeout(resolve, this.latencyMs))
    return this.inner.onEncrypt(material)
  }

  async _onDecrypt (material, encryptedDataKeys) {
    this.calls++
    await new Promise((resolve) => setTimeout(resolve, this.latencyMs))
    return this.inner.onDecrypt(material, encryptedDataKeys)
  }
}

function cpuSeconds () {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1e6
}

async function repeat (seconds, op) {
  const start = Date.now()
  const cpu0 = cpuSeconds()
  let n = 0
  while (n < 3 || (Date.now() - start) / 1000 < seconds) {
    await op()
    n++
  }
  return [n, cpuSeconds() - cpu0]
}

async function main () {
  const workload = process.argv[2]
  const seconds = Number(process.argv[3] || 2)
  const wall = Date.now()
  const ring = keyring()
  let ops = 0
  let size = 0
  let cpu = 0
  const extra = {}
  if (workload === 'cache-1k-0478') {
    const cmm = new NodeCachingMaterialsManager({
      backingMaterials: ring, cache: getLocalCryptographicMaterialsCache(100), maxAge: 600000,
      maxMessagesEncrypted: 2 ** 32,
    })
    const pt = Buffer.alloc(1024, 7)
    size = 1024
    ;[ops, cpu] = await repeat(seconds, () => encrypt(cmm, pt, {
      encryptionContext: CONTEXT, suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
    }))
  } else if (workload.startsWith('hier')) {
    // The AWS SDK v3 clients read AWS_ENDPOINT_URL_KMS / AWS_ENDPOINT_URL_DYNAMODB (the emulator).
    const table = process.env.ENVELOPE_COMPARE_TABLE
    const keyStore = new BranchKeyStoreNode({
      logicalKeyStoreName: table, storage: { ddbTableName: table },
      kmsConfiguration: { identifier: process.env.ENVELOPE_COMPARE_KEY_ARN },
    })
    const hier = new KmsHierarchicalKeyRingNode({
      branchKeyId: process.env.ENVELOPE_COMPARE_BRANCH_KEY, keyStore, cacheLimitTtl: 600, utf8Sorting: true,
    })
    const pt = Buffer.alloc(1024, 7)
    size = 1024
    const once = async () => (await encrypt(hier, pt, {
      encryptionContext: CONTEXT, frameLength: 4096,
      suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
    })).result
    const message = await once() // warms the branch-key cache (the active key)
    if (workload.startsWith('hierdec')) {
      await decrypt(hier, message) // and the version it names
      ;[ops, cpu] = await repeat(seconds, () => decrypt(hier, message))
    } else {
      ;[ops, cpu] = await repeat(seconds, once)
    }
  } else if (workload === 'burst-64') {
    const slow = new SlowKeyring(ring, 50)
    const cmm = new NodeCachingMaterialsManager({
      backingMaterials: slow, cache: getLocalCryptographicMaterialsCache(100), maxAge: 600000,
      maxMessagesEncrypted: 1000,
    })
    const pt = Buffer.alloc(1024, 7)
    size = 1024
    const cpu0 = cpuSeconds()
    await Promise.all(Array.from({ length: 64 }, () => encrypt(cmm, pt, {
      encryptionContext: CONTEXT, suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
    })))
    cpu = cpuSeconds() - cpu0
    ops = 64
    extra.master_key_calls = slow.calls
  } else if (workload !== 'idle') {
    const [op, sz, suite] = workload.split('-')
    size = sz === '1k' ? 1024 : 16 << 20
    const suiteId = suite === '0578'
      ? AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
      : AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY
    const pt = Buffer.alloc(size, 7)
    const once = async () => (await encrypt(ring, pt, { encryptionContext: CONTEXT, suiteId, frameLength: 4096 })).result
    if (op === 'mem') {
      await once()
      ops = 1
    } else if (op === 'enc') {
      ;[ops, cpu] = await repeat(seconds, once)
    } else if (op === 'dec') {
      const message = await once()
      ;[ops, cpu] = await repeat(seconds, () => decrypt(ring, message))
    } else {
      throw new Error(`unknown workload ${workload}`)
    }
  }
  console.log(JSON.stringify({
    peer: 'js', workload, ops, bytes_per_op: size, cpu_s: cpu, wall_s: (Date.now() - wall) / 1000, ...extra,
  }))
}

main().catch((e) => {
  console.error(`js_peer: ${e.stack}`)
  process.exitCode = 1
})
