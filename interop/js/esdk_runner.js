#!/usr/bin/env node
// Drive the released JavaScript AWS Encryption SDK (@aws-crypto/client-node, pinned in
// package-lock.json beside this file) over the same test-vector manifests as esdk_runner.py:
//
//   encrypt MANIFEST --out DIR [--cache N] [--default-sorting]
//           encrypt an awses-encrypt manifest and write an awses-decrypt manifest (any ESDK can
//           replay it); with --cache N through Node's caching materials manager, N messages per
//           data key
//   decrypt MANIFEST [--cache] [--default-sorting] [--expect-failures FILE]
//           decrypt every test of an awses-decrypt manifest (v2-v3); with --cache through Node's
//           caching materials manager
//
// The closing line says how many distinct data keys the messages were under and, with --cache,
// how many calls reached the keyrings behind the caching CMMs (its misses).
//
// Raw AES keyrings are built with `utf8Sorting: true` (encryption contexts sorted by UTF-8 bytes,
// as the message format and every other ESDK do) unless --default-sorting is given, which keeps
// the JS ESDK's default (`localeCompare`, aws-encryption-sdk-javascript #428). With
// --expect-failures FILE the tests named in FILE (one id per line) must fail and all others pass.
//
// Output follows envelope-vectors: one line per failure and a closing "N passed, N failed, N
// skipped". The exit status is non-zero if anything failed. The work is split over one worker
// thread per CPU.
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const crypto = require('crypto')
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads')
const {
  buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier, RawRsaKeyringNode,
  MultiKeyringNode, KmsKeyringNode, NodeCachingMaterialsManager, getLocalCryptographicMaterialsCache,
  getClient, KMS, KeyringNode,
} = require('@aws-crypto/client-node')

const COMMITTING = new Set(['0478', '0578'])

function uriPath (base, uri) {
  if (!uri.startsWith('file://')) throw new Error(`not a file:// URI: ${uri}`)
  return path.resolve(base, uri.slice('file://'.length))
}

function material (entry) {
  const m = entry.material
  return Array.isArray(m) ? m.join(entry['line-separator'] || '') : m
}

// ------------------------------------------------------------------------------ keys and keyrings

const AES_SUITES = {
  16: RawAesWrappingSuiteIdentifier.AES128_GCM_IV12_TAG16_NO_PADDING,
  24: RawAesWrappingSuiteIdentifier.AES192_GCM_IV12_TAG16_NO_PADDING,
  32: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
}

class Keys {
  constructor (keysPath, options) {
    this.keys = JSON.parse(fs.readFileSync(keysPath, 'utf8')).keys
    this.options = options
    this.keyrings = new Map()
  }

  keyId (desc) {
    const entry = this.keys[desc.key]
    return entry['key-id'] || desc.key
  }

  // The public half that shares a private key's key id (the keys manifest lists both).
  publicPem (keyId) {
    for (const entry of Object.values(this.keys)) {
      if (entry.type === 'public' && entry['key-id'] === keyId) return material(entry)
    }
    return undefined
  }

  keyring (desc) {
    const memo = JSON.stringify(desc)
    let keyring = this.keyrings.get(memo)
    if (!keyring) {
      keyring = this.buildKeyring(desc)
      this.keyrings.set(memo, keyring)
    }
    return keyring
  }

  buildKeyring (desc) {
    const entry = this.keys[desc.key]
    if (!entry) throw new Error(`the keys manifest has no key ${desc.key}`)
    if (desc.type === 'aws-kms') {
      const arn = this.keyId(desc)
      // The SDK v3 client honours AWS_ENDPOINT_URL_KMS (the emulator).
      const clientProvider = getClient(KMS, { region: arn.split(':')[3] })
      return new KmsKeyringNode({ generatorKeyId: arn, clientProvider })
    }
    if (desc.type !== 'raw') throw new Error(`unsupported master key type ${desc.type}`)
    const keyName = this.keyId(desc)
    const keyNamespace = desc['provider-id']
    if (desc['encryption-algorithm'] === 'aes') {
      const key = Buffer.from(material(entry), 'base64')
      const input = { keyName, keyNamespace, unencryptedMasterKey: new Uint8Array(key), wrappingSuite: AES_SUITES[key.length] }
      if (!this.options.defaultSorting) input.utf8Sorting = true
      return new RawAesKeyringNode(input)
    }
    if (desc['encryption-algorithm'] !== 'rsa') throw new Error(`unsupported algorithm ${desc['encryption-algorithm']}`)
    const rsaKey = entry.type === 'private'
      ? { privateKey: material(entry), publicKey: this.publicPem(keyName) }
      : { publicKey: material(entry) }
    if (desc['padding-algorithm'] === 'pkcs1') {
      return new RawRsaKeyringNode({ keyName, keyNamespace, rsaKey, padding: crypto.constants.RSA_PKCS1_PADDING })
    }
    if (desc['padding-algorithm'] !== 'oaep-mgf1') throw new Error(`unsupported RSA padding ${desc['padding-algorithm']}`)
    return new RawRsaKeyringNode({
      keyName, keyNamespace, rsaKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: desc['padding-hash'],
    })
  }

  // The first key generates the data key, the others also wrap it.
  multi (descs) {
    const keyrings = descs.map((d) => this.keyring(d))
    if (keyrings.length === 1) return keyrings[0]
    return new MultiKeyringNode({ generator: keyrings[0], children: keyrings.slice(1) })
  }
}

// ------------------------------------------------------------------------------------- workers

// A keyring that counts the calls that reach it (the caching CMM's misses).
class CountingKeyring extends KeyringNode {
  constructor (inner, counter) {
    super()
    this.inner = inner
    this.counter = counter
  }

  async _onEncrypt (material) {
    this.counter.calls++
    return this.inner.onEncrypt(material)
  }

  async _onDecrypt (material, encryptedDataKeys) {
    this.counter.calls++
    return this.inner.onDecrypt(material, encryptedDataKeys)
  }
}

// One caching materials manager per keyring description, over one cache per worker: messages of
// the same keyring, suite and context share data keys, up to `limit` messages each. The calls
// that reach the keyrings are counted in `counter`.
function cachingCmms (keys, limit, counter) {
  const cache = getLocalCryptographicMaterialsCache(1000)
  const cmms = new Map()
  return (descs) => {
    const memo = JSON.stringify(descs)
    let cmm = cmms.get(memo)
    if (!cmm) {
      cmm = new NodeCachingMaterialsManager({
        backingMaterials: new CountingKeyring(keys.multi(descs), counter),
        cache, maxAge: 600000, maxMessagesEncrypted: limit, partition: memo,
      })
      cmms.set(memo, cmm)
    }
    return cmm
  }
}

async function encryptOne (ctx, testId, test) {
  const suite = test.algorithm
  const client = COMMITTING.has(suite) ? ctx.committing : ctx.forbidding
  const materials = ctx.cmmFor ? ctx.cmmFor(test['master-keys']) : ctx.keys.multi(test['master-keys'])
  const plaintext = ctx.plaintexts.get(test.plaintext)
  const { result, messageHeader } = await client.encrypt(materials, plaintext, {
    suiteId: parseInt(suite, 16), encryptionContext: test['encryption-context'], frameLength: test['frame-size'],
  })
  fs.writeFileSync(path.join(ctx.out, 'ciphertexts', testId), result)
  // The wrapped data key, to count how many messages share one (the caching CMM's effect).
  return Buffer.from(messageHeader.encryptedDataKeys[0].encryptedDataKey).toString('hex')
}

// The outcome of one test: null when it is the expected one, else what went wrong; and the first
// wrapped data key of a message that decrypted.
async function decryptOne (ctx, testId, test) {
  const ciphertext = fs.readFileSync(uriPath(ctx.base, test.ciphertext))
  const expectError = 'error' in test.result
  // Built outside the try: a keyring that cannot be built is a failure, never an expected error.
  const materials = ctx.cmmFor ? ctx.cmmFor(test['master-keys']) : ctx.keys.multi(test['master-keys'])
  let plaintext, messageHeader
  try {
    ;({ plaintext, messageHeader } = await ctx.committing.decrypt(materials, ciphertext))
  } catch (e) {
    if (expectError) return { failure: null }
    return { failure: `expected success, got ${e.name}: ${e.message}` }
  }
  if (expectError) return { failure: 'expected an error, but decryption succeeded' }
  const edk = Buffer.from(messageHeader.encryptedDataKeys[0].encryptedDataKey).toString('hex')
  const expected = fs.readFileSync(uriPath(ctx.base, test.result.output.plaintext))
  const failure = Buffer.compare(Buffer.from(plaintext), expected) === 0 ? null : 'decrypted to the wrong plaintext'
  return { failure, edk }
}

async function worker () {
  const { command, base, keysPath, out, tests, options, plaintextDir } = workerData
  const keys = new Keys(keysPath, options)
  const ctx = {
    keys, base, out,
    committing: buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT),
    forbidding: buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT),
    plaintexts: new Map(),
  }
  const counter = { calls: 0 }
  if (options.cache) ctx.cmmFor = cachingCmms(keys, options.cache, counter)
  for (const [testId, test] of tests) {
    try {
      if (command === 'encrypt') {
        if (!ctx.plaintexts.has(test.plaintext)) {
          ctx.plaintexts.set(test.plaintext, fs.readFileSync(path.join(plaintextDir, test.plaintext)))
        }
        const edk = await encryptOne(ctx, testId, test)
        parentPort.postMessage({ testId, failure: null, edk })
      } else {
        parentPort.postMessage({ testId, ...await decryptOne(ctx, testId, test) })
      }
    } catch (e) {
      parentPort.postMessage({ testId, failure: `${e.name}: ${e.message}` })
    }
  }
  parentPort.postMessage({ keyringCalls: counter.calls })
}

// ---------------------------------------------------------------------------------------- main

// Tests of one keyring, suite and encryption context go to one worker, so that its caching CMM
// (--cache) sees them all; the groups are dealt out round robin.
function runWorkers (data, tests) {
  const n = Math.max(1, Math.min(os.cpus().length, tests.length))
  const shards = Array.from({ length: n }, () => [])
  const groups = new Map()
  for (const t of tests) {
    const [, test] = t
    const key = JSON.stringify([test['master-keys'], test.algorithm, test['encryption-context']])
    if (!groups.has(key)) groups.set(key, [])
    groups.get(key).push(t)
  }
  let i = 0
  for (const group of groups.values()) shards[i++ % n].push(...group)
  const results = []
  const counts = { keyringCalls: 0 }
  return Promise.all(shards.map((shard) => new Promise((resolve, reject) => {
    const w = new Worker(__filename, { workerData: { ...data, tests: shard } })
    w.on('message', (m) => {
      if ('keyringCalls' in m) counts.keyringCalls += m.keyringCalls
      else results.push(m)
    })
    w.on('error', reject)
    w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))))
  }))).then(() => {
    if (results.length !== tests.length) throw new Error(`${tests.length} tests, but ${results.length} results`)
    results.keyringCalls = counts.keyringCalls
    return results
  })
}

function parseArgs (argv) {
  const options = { cache: 0, defaultSorting: false, out: null, expectFailures: null }
  const positional = []
  const command = argv[0]
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--out') options.out = argv[++i]
    else if (a === '--cache' && command === 'encrypt') options.cache = Number(argv[++i])
    else if (a === '--cache') options.cache = 2 ** 32 // the largest limit Node's caching CMM takes
    else if (a === '--default-sorting') options.defaultSorting = true
    else if (a === '--expect-failures') options.expectFailures = argv[++i]
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`)
    else positional.push(a)
  }
  if (!['encrypt', 'decrypt'].includes(command) || positional.length !== 1) {
    throw new Error('usage: esdk_runner.js encrypt MANIFEST --out DIR [--cache N] [--default-sorting]\n' +
      '       esdk_runner.js decrypt MANIFEST [--cache] [--default-sorting] [--expect-failures FILE]')
  }
  if (command === 'encrypt' && !options.out) throw new Error('encrypt needs --out DIR')
  if (command === 'encrypt' && options.cache !== 0 && !(Number.isInteger(options.cache) && options.cache >= 1)) {
    throw new Error('--cache takes a number of messages per data key')
  }
  return { command, manifest: positional[0], options }
}

function report (failures, count, verb, note) {
  for (const f of failures.sort()) console.log(`FAIL ${f}`)
  console.log(`${count} ${verb}, ${failures.length} failed, 0 skipped${note ? ` (${note})` : ''}`)
}

async function main () {
  const started = Date.now()
  const { command, manifest, options } = parseArgs(process.argv.slice(2))
  const manifestPath = path.resolve(manifest)
  const doc = JSON.parse(fs.readFileSync(manifestPath, 'utf8'))
  const base = path.dirname(manifestPath)
  const keysPath = uriPath(base, doc.keys)
  const workerOptions = { cache: options.cache, defaultSorting: options.defaultSorting }
  let status = 0
  if (command === 'encrypt') {
    if (doc.manifest.type !== 'awses-encrypt') throw new Error('not an awses-encrypt manifest')
    const out = path.resolve(options.out)
    fs.mkdirSync(path.join(out, 'ciphertexts'), { recursive: true })
    fs.mkdirSync(path.join(out, 'plaintexts'), { recursive: true })
    fs.copyFileSync(keysPath, path.join(out, 'keys.json'))
    for (const [name, size] of Object.entries(doc.plaintexts)) {
      fs.writeFileSync(path.join(out, 'plaintexts', name), crypto.randomBytes(size))
    }
    const tests = Object.entries(doc.tests)
    for (const [id, t] of tests) {
      if (t.cmm && t.cmm !== 'Default') throw new Error(`${id}: the JS ESDK has no ${t.cmm} CMM`)
    }
    const results = await runWorkers({
      command, base, keysPath, out, options: workerOptions, plaintextDir: path.join(out, 'plaintexts'),
    }, tests)
    const failures = []
    const entries = {}
    const dataKeys = new Set()
    for (const { testId, failure, edk } of results) {
      if (failure) { failures.push(`${testId}: ${failure}`); continue }
      dataKeys.add(edk)
      const test = doc.tests[testId]
      entries[testId] = {
        ciphertext: `file://ciphertexts/${testId}`,
        'master-keys': test['master-keys'].filter((d) => d.decryptable !== false).map(({ decryptable, ...d }) => d),
        result: { output: { plaintext: `file://plaintexts/${test.plaintext}` } },
        'encryption-context': test['encryption-context'],
      }
    }
    const sorted = Object.fromEntries(Object.keys(entries).sort().map((k) => [k, entries[k]]))
    const version = require('@aws-crypto/client-node/package.json').version
    fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify({
      manifest: { type: 'awses-decrypt', version: 2 },
      client: { name: 'aws/aws-encryption-sdk-javascript', version },
      keys: 'file://keys.json',
      tests: sorted,
    }, null, 1))
    const note = options.cache
      ? `${Object.keys(entries).length} messages under ${dataKeys.size} data keys, ${results.keyringCalls} keyring calls`
      : ''
    report(failures, Object.keys(entries).length, 'encrypted', note)
    status = failures.length ? 1 : 0
  } else {
    if (doc.manifest.type !== 'awses-decrypt') throw new Error('not an awses-decrypt manifest')
    const version = doc.manifest.version
    if (version < 2 || version > 3) throw new Error(`unsupported awses-decrypt version ${version}`)
    const tests = Object.entries(doc.tests)
    const results = await runWorkers({ command, base, keysPath, out: null, options: workerOptions }, tests)
    const expected = options.expectFailures
      ? new Set(fs.readFileSync(options.expectFailures, 'utf8').split('\n').filter(Boolean))
      : new Set()
    const failures = []
    const dataKeys = new Set()
    let passed = 0
    let failedAsExpected = 0
    for (const { testId, failure, edk } of results) {
      if (edk) dataKeys.add(edk)
      if (expected.has(testId)) {
        if (failure) failedAsExpected++
        else failures.push(`${testId}: was expected to fail (--expect-failures), but decrypted`)
      } else if (failure) failures.push(`${testId}: ${failure}`)
      else passed++
    }
    for (const id of expected) {
      if (!(id in doc.tests)) failures.push(`${id}: named by --expect-failures, but not in the manifest`)
    }
    let note = `${results.filter((r) => r.edk).length} messages under ${dataKeys.size} data keys`
    if (options.cache) note += `, ${results.keyringCalls} keyring calls`
    report(failures, passed, options.expectFailures ? `passed, ${failedAsExpected} failed as expected` : 'passed', note)
    status = failures.length ? 1 : 0
  }
  console.error(`(${command} took ${((Date.now() - started) / 1000).toFixed(1)}s)`)
  return status
}

if (isMainThread) {
  main().then((status) => { process.exitCode = status }, (e) => {
    console.error(`error: ${e.message}`)
    process.exitCode = 2
  })
} else {
  worker().catch((e) => {
    console.error(`worker: ${e.stack}`)
    process.exitCode = 1
  })
}
