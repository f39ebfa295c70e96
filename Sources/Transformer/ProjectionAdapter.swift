import Foundation

/// The seven linear projections of a LLaMA block that adapters can attach to.
public enum Projection: String, CaseIterable, Sendable, Comparable {
    case q, k, v, o, gate, up, down

    public static func < (a: Projection, b: Projection) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Hugging Face's module name, as PEFT files use it.
    public var huggingFaceName: String {
        switch self {
        case .q: return "self_attn.q_proj"
        case .k: return "self_attn.k_proj"
        case .v: return "self_attn.v_proj"
        case .o: return "self_attn.o_proj"
        case .gate: return "mlp.gate_proj"
        case .up: return "mlp.up_proj"
        case .down: return "mlp.down_proj"
        }
    }

    /// GGUF's tensor name in a block (`blk.N.<name>.weight`).
    public var ggufName: String {
        switch self {
        case .q: return "attn_q"
        case .k: return "attn_k"
        case .v: return "attn_v"
        case .o: return "attn_output"
        case .gate: return "ffn_gate"
        case .up: return "ffn_up"
        case .down: return "ffn_down"
        }
    }

    /// (in, out) features of this projection in a model, with the MLP `ffn` wide (elastic width).
    public func shape(_ c: LlamaConfiguration, ffn: Int) -> (inFeatures: Int, outFeatures: Int) {
        switch self {
        case .gate, .up: return (c.dim, ffn)
        case .down: return (ffn, c.dim)
        default: return shape(c)
        }
    }

    /// (in, out) features of this projection in a model.
    public func shape(_ c: LlamaConfiguration) -> (inFeatures: Int, outFeatures: Int) {
        switch self {
        case .q, .o: return (c.dim, c.dim)
        case .k, .v: return (c.dim, c.kvDim)
        case .gate, .up: return (c.dim, c.ffnDim)
        case .down: return (c.ffnDim, c.dim)
        }
    }
}

/// A trainable addition to a frozen projection: y = W x + Δ(x). The model calls `forward` after
/// its own product and `backward` during its backward pass; an adapter keeps what its backward
/// needs from the last training forward, and accumulates its own parameter gradients.
/// `inFeatures` and `outFeatures` are the widths in use, which an elastic MLP width may make
/// smaller than the projection's (the first channels are kept).
public protocol ProjectionAdapter: AnyObject {
    /// out (rows, outFeatures) += Δ(input (rows, inFeatures)).
    func forward(input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int, training: Bool)
    /// dInput += (∂Δ/∂input)ᵀ dOut; parameter gradients accumulate.
    func backward(dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>, rows: Int,
                  inFeatures: Int, outFeatures: Int)
}
