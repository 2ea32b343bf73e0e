/**
 * The WebGPU runtime every kernel runs through: one device, a pipeline cache keyed by WGSL source (explicit bind
 * group layouts parsed from the declarations), bind groups cached per (pipeline, buffers), a pool of
 * storage buffers bucketed by size, one uniform buffer holding every dispatch's parameters (a 256-byte slot each,
 * bound with a dynamic offset), and one command encoder that collects dispatches until something must be read back
 * (or `flush()` is called).
 *
 * Ordering rules this relies on (WebGPU spec): commands in one encoder run in order with storage writes visible to
 * later dispatches; queue.writeBuffer runs at call time, i.e. *before* commands still sitting in an unsubmitted
 * encoder. So data uploads are recorded as copies inside the encoder (from a mapped staging buffer), never as
 * writeBuffer into a pooled buffer, and a released buffer may be handed out again at once. The parameters are the
 * one writeBuffer: staged on the host while recording and written just before the submit that reads them.
 */
import { requestGpuDevice, type RequestGpuOptions, type SubgroupMatrixShape } from './gpu.js';

export type GpuDType = 'f32' | 'i32' | 'u32';

/** A device buffer holding a tensor (row-major). The buffer may be larger than the tensor (pool buckets). */
export interface GpuTensor {
  readonly buffer: GPUBuffer;
  readonly shape: readonly number[];
  readonly dtype: GpuDType;
}

export function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Builder for a kernel's uniform parameters (std140-free: scalars in declaration order, 4 bytes each). */
export class Params {
  private view: DataView;
  private n = 0;
  constructor(capacity = 64) { this.view = new DataView(new ArrayBuffer(capacity * 4)); }
  u32(v: number): this { this.view.setUint32(4 * this.n++, v >>> 0, true); return this; }
  i32(v: number): this { this.view.setInt32(4 * this.n++, v | 0, true); return this; }
  f32(v: number): this { this.view.setFloat32(4 * this.n++, v, true); return this; }
  /** The bytes, padded to 16 (uniform struct size rule). */
  bytes(): Uint8Array {
    const len = Math.max(16, Math.ceil((this.n * 4) / 16) * 16);
    return new Uint8Array(this.view.buffer, 0, len);
  }
}

/** A binding: a tensor, or a raw buffer (weights). */
export type Binding = GpuTensor | GPUBuffer;

const STORAGE = 0x80; // GPUBufferUsage.STORAGE
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const MAP_READ = 0x01;
const UNIFORM = 0x40;
const INDIRECT = 0x100;

/** Parameter slot per dispatch (the uniform dynamic-offset alignment) and the shared parameter buffer's size. */
const UNIFORM_SLOT = 256;
const UNIFORM_BYTES = 1 << 20;
const MAX_BIND_GROUPS = 8192;

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  id: number;
  hasUniform: boolean;
}

export interface GpuContextOptions extends RequestGpuOptions {
  /** Use a given device (browser apps that own one). */
  device?: GPUDevice;
  /** false: never use subgroup-matrix (tensor-core) kernels even where the adapter has them (default: use them). */
  subgroupMatrix?: boolean;
}

export class GpuContext {
  readonly device: GPUDevice;
  readonly adapterName: string;
  readonly features: ReadonlySet<string>;
  readonly maxBinding: number;
  /**
   * The f16 → f32 tensor-core fragment when the device has subgroup matrices (Dawn's
   * chromium-experimental-subgroup-matrix); f16 matmuls then take the kernels of coop-gemm.ts.
   */
  readonly subgroupMatrix?: SubgroupMatrixShape;
  private pipelines = new Map<string, CachedPipeline>();
  /** Bind groups by pipeline and buffers (buffers get ids on first use); cleared when pooled buffers are destroyed. */
  private bindGroups = new Map<string, GPUBindGroup>();
  private bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 0;
  /** Every dispatch's parameters live in one uniform buffer, staged here and written once per submit. */
  private readonly uniform: GPUBuffer;
  private readonly uniformStage = new Uint8Array(UNIFORM_BYTES);
  private uniformUsed = 0;
  private free = new Map<number, GPUBuffer[]>();
  private encoder?: GPUCommandEncoder;
  private pass?: GPUComputePassEncoder;
  /** Buffers to destroy once the current encoder is submitted (staging). */
  private afterSubmit: GPUBuffer[] = [];
  /** Live pooled bytes (allocated from the device, in use or free), for memory reports. */
  pooledBytes = 0;
  /** Bytes of persistent (weight) buffers created through createStatic. */
  staticBytes = 0;
  dispatches = 0;
  /** Dispatches recorded since the last submit. */
  private unsubmitted = 0;
  /** Dispatches of tensor-core (subgroup-matrix) kernels, counted by coop-gemm.ts: reports say whether they ran. */
  tensorCoreDispatches = 0;
  /** Bind groups created (a cache miss in `run`: a new combination of pipeline and buffers), for host-cost reports. */
  bindGroupsCreated = 0;
  /** Device buffers created for the pool (a pool miss), for host-cost reports. */
  poolBuffersCreated = 0;

  private constructor(device: GPUDevice, adapterName: string, features: ReadonlySet<string>, subgroupMatrix?: SubgroupMatrixShape) {
    this.device = device;
    this.adapterName = adapterName;
    this.features = features;
    if (subgroupMatrix) this.subgroupMatrix = subgroupMatrix;
    this.maxBinding = device.limits.maxStorageBufferBindingSize;
    this.uniform = device.createBuffer({ size: UNIFORM_BYTES, usage: UNIFORM | COPY_DST, label: 'switchyard params' });
    // Validation errors (a kernel bug) surface at the next read instead of silently producing zeros.
    device.addEventListener('uncapturederror', (ev) => {
      this.error ??= (ev as GPUUncapturedErrorEvent).error.message.split('\n')[0];
    });
    void device.lost.then((info) => {
      if (info.reason !== 'destroyed') this.error ??= `the GPU device was lost (${info.message || info.reason})`;
    });
  }

  /** The first uncaptured device error, if any. */
  error?: string;

  private checkError(): void {
    if (this.error) throw new Error(`WebGPU error: ${this.error}`);
  }

  static async create(opts: GpuContextOptions = {}): Promise<GpuContext> {
    if (opts.device) return new GpuContext(opts.device, 'external device', new Set(opts.device.features as unknown as Iterable<string>));
    const d = await requestGpuDevice(opts);
    return new GpuContext(d.device, d.adapterName, d.features, opts.subgroupMatrix === false ? undefined : d.subgroupMatrix);
  }

  /** A software rasteriser (lavapipe/llvmpipe, SwiftShader, WARP): correct but slower than the CPU kernels. */
  get isSoftware(): boolean { return /llvmpipe|lavapipe|swiftshader|warp|software/i.test(this.adapterName); }


  // ---------------------------------------------------------------- buffers

  private static bucket(bytes: number): number {
    // Powers of two up to 1 MiB, then 1 MiB steps up to 64 MiB, then exact 16 MiB multiples.
    const b = Math.max(256, bytes);
    if (b <= 1 << 20) return 1 << Math.ceil(Math.log2(b));
    if (b <= 64 << 20) return Math.ceil(b / (1 << 20)) * (1 << 20);
    return Math.ceil(b / (16 << 20)) * (16 << 20);
  }

  /** An uninitialised pooled tensor. */
  tensor(shape: readonly number[], dtype: GpuDType = 'f32'): GpuTensor {
    const bytes = GpuContext.bucket(numelOf(shape) * 4);
    const list = this.free.get(bytes);
    const buffer = list?.pop() ?? this.newBuffer(bytes);
    return { buffer, shape, dtype };
  }

  private newBuffer(bytes: number): GPUBuffer {
    this.pooledBytes += bytes;
    this.poolBuffersCreated++;
    return this.device.createBuffer({ size: bytes, usage: STORAGE | COPY_SRC | COPY_DST | INDIRECT });
  }

  /** Return a tensor's buffer to the pool (safe at once: see the ordering note at the top). */
  release(...ts: (GpuTensor | undefined)[]): void {
    for (const t of ts) {
      if (!t) continue;
      const size = t.buffer.size;
      let list = this.free.get(size);
      if (!list) this.free.set(size, (list = []));
      list.push(t.buffer);
    }
  }

  /** A persistent (unpooled) buffer filled with `data`, for weights. Written at once with writeBuffer (never pooled). */
  createStatic(data: ArrayBufferView, label?: string): GPUBuffer {
    const size = Math.max(16, Math.ceil(data.byteLength / 4) * 4);
    const buffer = this.device.createBuffer({ size, usage: STORAGE | COPY_SRC | COPY_DST, label });
    this.staticBytes += size;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    // writeBuffer needs a multiple of 4 bytes, and a plain ArrayBuffer (weights may sit in the shared WASM heap).
    const whole = bytes.byteLength - (bytes.byteLength % 4);
    const chunk = 64 << 20;
    for (let off = 0; off < whole; off += chunk) {
      const part = bytes.slice(off, off + Math.min(chunk, whole - off));
      this.device.queue.writeBuffer(buffer, off, part);
    }
    if (whole < bytes.byteLength) {
      const tail = new Uint8Array(4);
      tail.set(bytes.subarray(whole));
      this.device.queue.writeBuffer(buffer, whole, tail);
    }
    return buffer;
  }

  /** A pooled tensor holding `data`, uploaded in command order (see the note at the top). */
  upload(data: Float32Array | Int32Array | Uint32Array, shape: readonly number[] = [data.length]): GpuTensor {
    const dtype: GpuDType = data instanceof Float32Array ? 'f32' : data instanceof Int32Array ? 'i32' : 'u32';
    const t = this.tensor(shape, dtype);
    if (data.byteLength === 0) return t;
    const size = Math.ceil(data.byteLength / 4) * 4;
    const staging = this.device.createBuffer({ size, usage: COPY_SRC, mappedAtCreation: true });
    new Uint8Array(staging.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    staging.unmap();
    this.endPass();
    this.enc().copyBufferToBuffer(staging, 0, t.buffer, 0, size);
    this.afterSubmit.push(staging);
    return t;
  }

  /** Copy `bytes` bytes between buffers in command order. */
  copy(src: Binding, srcOffset: number, dst: Binding, dstOffset: number, bytes: number): void {
    if (bytes === 0) return;
    this.endPass();
    this.enc().copyBufferToBuffer(bufferOf(src), srcOffset, bufferOf(dst), dstOffset, bytes);
  }

  // ---------------------------------------------------------------- kernels

  /**
   * The compute pipeline for a WGSL module (cached by source text; entry point `main`), with an explicit bind group
   * layout read from the module's `@group(0) @binding(n) var<…>` declarations: the uniform takes a dynamic offset
   * into the shared parameter buffer, so one bind group serves every dispatch over the same buffers.
   */
  pipeline(code: string): CachedPipeline {
    let p = this.pipelines.get(code);
    if (!p) {
      const entries: GPUBindGroupLayoutEntry[] = [];
      for (const m of code.matchAll(/@group\(0\)\s*@binding\((\d+)\)\s*var\s*<\s*(uniform|storage)\s*(?:,\s*(read_write|read)\s*)?>/g)) {
        const binding = Number(m[1]);
        const type: GPUBufferBindingType = m[2] === 'uniform' ? 'uniform' : m[3] === 'read_write' ? 'storage' : 'read-only-storage';
        entries.push({ binding, visibility: 4 /* GPUShaderStage.COMPUTE */, buffer: { type, hasDynamicOffset: type === 'uniform' } });
      }
      entries.sort((a, b) => a.binding - b.binding);
      entries.forEach((e, i) => { if (e.binding !== i) throw new Error(`WGSL bindings must be numbered 0, 1, 2, … (found @binding(${e.binding}) at position ${i})`); });
      const layout = this.device.createBindGroupLayout({ entries });
      const module = this.device.createShaderModule({ code });
      const pipeline = this.device.createComputePipeline({
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: 'main' },
      });
      p = { pipeline, layout, id: this.pipelines.size, hasUniform: entries[0]?.buffer?.type === 'uniform' };
      this.pipelines.set(code, p);
    }
    return p;
  }

  private bufferId(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextBufferId++));
    return id;
  }

  /**
   * Record one dispatch. Bindings: @binding(0) is the uniform `params` when given, then the buffers in order
   * (@binding(1), @binding(2), … — or from 0 when there are no params).
   */
  run(code: string, params: Params | undefined, bindings: readonly Binding[], workgroups: readonly [number, number?, number?]): void {
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxDim = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim) throw new Error(`dispatch ${x}×${y}×${z} exceeds ${maxDim} workgroups per dimension`);
    const pipe = this.pipeline(code);
    if (pipe.hasUniform !== (params !== undefined)) throw new Error(`dispatch: the shader ${pipe.hasUniform ? 'declares' : 'has no'} a uniform at @binding(0) but params were ${params ? '' : 'not '}given`);
    let offset = 0;
    if (params) {
      const bytes = params.bytes();
      if (bytes.byteLength > UNIFORM_SLOT) throw new Error(`dispatch: ${bytes.byteLength} bytes of params exceed ${UNIFORM_SLOT}`);
      if (this.uniformUsed + UNIFORM_SLOT > UNIFORM_BYTES) this.flush();
      offset = this.uniformUsed;
      this.uniformStage.set(bytes, offset);
      this.uniformUsed += UNIFORM_SLOT;
    }
    const buffers = bindings.map(bufferOf);
    let key = String(pipe.id);
    for (const b of buffers) key += ',' + this.bufferId(b);
    let group = this.bindGroups.get(key);
    if (!group) {
      const entries: GPUBindGroupEntry[] = [];
      let b = 0;
      if (params) entries.push({ binding: b++, resource: { buffer: this.uniform, offset: 0, size: UNIFORM_SLOT } });
      for (const buffer of buffers) entries.push({ binding: b++, resource: { buffer } });
      group = this.device.createBindGroup({ layout: pipe.layout, entries });
      this.bindGroupsCreated++;
      if (this.bindGroups.size >= MAX_BIND_GROUPS) this.bindGroups.clear();
      this.bindGroups.set(key, group);
    }
    const pass = this.beginPass();
    pass.setPipeline(pipe.pipeline);
    if (params) pass.setBindGroup(0, group, [offset]);
    else pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
    this.unsubmitted++;
  }

  /**
   * A layer boundary: submit what is recorded once at least `minDispatches` dispatches are waiting, else just end
   * the compute pass. The decoder calls this after every layer, so the GPU starts on early layers while later ones
   * are recorded, without paying a submit per layer (~30 µs of host time each through Dawn), and no compute pass
   * grows past a layer (Dawn's cost per dispatch rises with the pass's size). bench/gpu-host, 48 layers: ~4.9 ms a
   * token submitting every layer, ~3.7 ms with this at 48 dispatches, ~4.5 ms with one submit and one pass a token.
   */
  flushIfBusy(minDispatches: number): void {
    if (this.unsubmitted >= minDispatches) this.flush();
    else this.endPass();
  }

  private enc(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private beginPass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.enc().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) { this.pass.end(); this.pass = undefined; }
  }

  /** Submit everything recorded so far. */
  flush(): void {
    this.endPass();
    if (this.uniformUsed > 0) {
      // Runs on the queue before this submit and after every earlier one: earlier submissions have read their
      // parameters by then, this one reads these.
      this.device.queue.writeBuffer(this.uniform, 0, this.uniformStage, 0, this.uniformUsed);
      this.uniformUsed = 0;
    }
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = undefined;
    }
    this.unsubmitted = 0;
    for (const b of this.afterSubmit) b.destroy();
    this.afterSubmit = [];
  }

  /** Wait until the GPU has finished everything submitted. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.checkError();
  }

  /** Read a tensor back (flushes). */
  async read(t: GpuTensor, count = numelOf(t.shape)): Promise<Float32Array> {
    return new Float32Array(await this.readBytes(t.buffer, 0, count * 4));
  }

  async readI32(t: GpuTensor, count = numelOf(t.shape)): Promise<Int32Array> {
    return new Int32Array(await this.readBytes(t.buffer, 0, count * 4));
  }

  async readBytes(buffer: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    if (bytes === 0) return new ArrayBuffer(0);
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.device.createBuffer({ size, usage: MAP_READ | COPY_DST });
    this.endPass();
    this.enc().copyBufferToBuffer(buffer, offset, staging, 0, size);
    this.flush();
    await staging.mapAsync(1 /* GPUMapMode.READ */);
    this.checkError();
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Free every pooled buffer (tensors still held become invalid). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) { this.pooledBytes -= b.size; b.destroy(); }
    this.free.clear();
    this.bindGroups.clear();
  }

  destroy(): void {
    this.flush();
    this.trim();
    this.device.destroy();
  }
}

export function bufferOf(b: Binding): GPUBuffer {
  return 'buffer' in b && 'shape' in b ? b.buffer : (b as GPUBuffer);
}
