/** The MoE layer shape the layer benchmarks (CPU and GPU) take. */
export interface MoeLayerShape {
  name: string;
  D: number;
  F: number;
  E: number;
  k: number;
  normTopK: boolean;
}
