import Foundation

// The gated MLP activation of LLaMA: out = silu(gate) ⊙ up.
//
// Shapes: gate, up, out, dGate, dUp, dOut  (count) — any layout, element-wise.
//
// silu(g) = g · σ(g),   σ(g) = 1 / (1 + e^(−g))
// d silu/dg = σ(g) · (1 + g · (1 − σ(g)))
// dGate += dOut ⊙ up ⊙ silu′(gate),   dUp += dOut ⊙ silu(gate)

public func swigluForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
    parallelChunks(count / 16, minimumChunk: 1024) { range in
        for block in range {
            let i = block * 16
            let g = UnsafeRawPointer(gate + i).loadUnaligned(as: FloatVector.self)
            let u = UnsafeRawPointer(up + i).loadUnaligned(as: FloatVector.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: g / (1 + fastExp(-g)) * u, as: FloatVector.self)
        }
    }
    for i in (count / 16 * 16)..<count {
        let g = gate[i]
        out[i] = g / (1 + fastExp(-g)) * up[i]
    }
}

public func swigluBackward(dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                           gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
    @inline(__always) func load(_ p: UnsafePointer<Float>, _ i: Int) -> FloatVector { UnsafeRawPointer(p + i).loadUnaligned(as: FloatVector.self) }
    @inline(__always) func store(_ v: FloatVector, _ p: UnsafeMutablePointer<Float>, _ i: Int) { UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: FloatVector.self) }
    parallelChunks(count / 16, minimumChunk: 1024) { range in
        for block in range {
            let i = block * 16
            let g = load(gate, i), u = load(up, i), d = load(dOut, i)
            let sigma = 1 / (1 + fastExp(-g))
            store(load(dGate, i) + d * u * sigma * (1 + g * (1 - sigma)), dGate, i)
            store(load(dUp, i) + d * g * sigma, dUp, i)
        }
    }
    for i in (count / 16 * 16)..<count {
        let g = gate[i]
        let sigma = 1 / (1 + fastExp(-g))
        dGate[i] += dOut[i] * up[i] * sigma * (1 + g * (1 - sigma))
        dUp[i] += dOut[i] * g * sigma
    }
}
