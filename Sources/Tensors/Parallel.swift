import Foundation

/// Splits `0..<count` into contiguous chunks and runs them on all cores. Element-wise kernels
/// use it between GEMMs (which OpenBLAS threads itself), so the two never compete.
@inline(__always)
public func parallelChunks(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    let workers = min(processorCount, max(1, count / max(1, minimumChunk)))
    if workers <= 1 {
        body(0..<count)
        return
    }
    let chunk = (count + workers - 1) / workers
    DispatchQueue.concurrentPerform(iterations: workers) { w in
        let start = w * chunk
        let end = min(count, start + chunk)
        if start < end { body(start..<end) }
    }
}

/// The cores this process may use, read once: Foundation reads them from the system on every
/// call, which cost more than a one-row kernel (a decode step makes hundreds of such calls).
public let processorCount = ProcessInfo.processInfo.activeProcessorCount
