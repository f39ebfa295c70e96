import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A dense Float32 array with a shape, row-major (the last axis is contiguous).
///
/// A reference type on purpose: model weights and activations are large buffers that kernels
/// read and write through raw pointers; copies are explicit (`copy()`), never implicit.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    /// 64-byte aligned storage of `count` floats.
    public let data: UnsafeMutablePointer<Float>

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        count = shape.reduce(1, *)
        data = Tensor.allocate(count)
        data.initialize(repeating: 0, count: count)
    }

    /// Large buffers are 2 MiB aligned and marked for transparent huge pages: the weights are
    /// hundreds of MB streamed by GEMM, and 4 KiB pages made the output projection TLB-bound.
    private static let hugePage = 2 << 20

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let bytes = max(1, count) * MemoryLayout<Float>.stride
        let alignment = bytes >= hugePage ? hugePage : 64
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: alignment)
        #if os(Linux)
        if bytes >= hugePage { _ = madvise(raw, bytes / hugePage * hugePage, MADV_HUGEPAGE) }
        #endif
        return raw.bindMemory(to: Float.self, capacity: max(1, count))
    }

    /// A tensor whose contents are undefined until written: for outputs a GEMM overwrites whole.
    public init(uninitialized shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        count = shape.reduce(1, *)
        data = Tensor.allocate(count)
    }

    public convenience init(shape: [Int], values: [Float]) {
        self.init(zeros: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    deinit {
        UnsafeMutableRawPointer(data).deallocate()
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    public var array: [Float] { Array(buffer) }

    public subscript(index: Int) -> Float {
        get { data[index] }
        set { data[index] = newValue }
    }

    public func copy() -> Tensor {
        let out = Tensor(zeros: shape)
        out.data.update(from: data, count: count)
        return out
    }

    public func fill(_ value: Float) {
        data.update(repeating: value, count: count)
    }

    public func zero() { fill(0) }

    /// Bytes of storage, for memory reports.
    public var byteCount: Int { count * MemoryLayout<Float>.stride }
}

extension Tensor {
    /// A copy with another shape of the same element count.
    public func reshaped(_ shape: [Int]) -> Tensor {
        precondition(shape.reduce(1, *) == count, "cannot reshape \(self.shape) to \(shape)")
        let out = Tensor(zeros: shape)
        out.data.update(from: data, count: count)
        return out
    }
}
