import Foundation
import Synchronization

/// Threads that wait for work by spinning, for products too short for a dispatch queue: a decode
/// step runs some 200 matrix-vector products of 10–100 µs each, and waking a sleeping thread
/// (a futex round trip) costs about as much as the product. A worker spins for 100 µs after its
/// last job (the gaps between a decode step's products are shorter), then sleeps until the next:
/// longer spins took a core from OpenBLAS's threads in the attention between prefill products,
/// and an idle kernel burns no CPU.
/// One job at a time: a caller that finds the workers busy (a product inside a parallel region)
/// runs its parts itself.
public final class SpinningWorkers: @unchecked Sendable {
    /// One worker per core beyond the caller's.
    public static let shared = SpinningWorkers(workers: max(0, processorCount - 1))

    public let workers: Int
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleeping = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let wake = NSCondition()
    private nonisolated(unsafe) var job: ((Int) -> Void)?
    /// How long a worker spins after a job before it sleeps.
    private let spinNanoseconds: UInt64 = 100_000

    init(workers: Int) {
        self.workers = workers
        for index in 0..<workers {
            let thread = Thread { [unowned self] in self.work(index + 1) }
            thread.name = "sculpt-worker-\(index + 1)"
            thread.start()
        }
    }

    /// Runs `body(0)` on this thread and `body(1)` … `body(workers)` on the workers; returns when
    /// all are done.
    public func run(_ body: (Int) -> Void) {
        guard workers > 0, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for part in 0...workers { body(part) }
            return
        }
        withoutActuallyEscaping(body) { body in
            job = body
            pending.store(workers, ordering: .sequentiallyConsistent)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleeping.load(ordering: .sequentiallyConsistent) > 0 {
                wake.lock()
                wake.broadcast()
                wake.unlock()
            }
            body(0)
            while pending.load(ordering: .acquiring) > 0 {}
            job = nil
        }
        busy.store(false, ordering: .releasing)
    }

    private func work(_ index: Int) {
        var seen = 0
        while true {
            var idleSince = DispatchTime.now().uptimeNanoseconds
            var spins = 0
            while generation.load(ordering: .sequentiallyConsistent) == seen {

                spins += 1
                if spins & 1023 == 0, DispatchTime.now().uptimeNanoseconds - idleSince > spinNanoseconds {
                    wake.lock()
                    sleeping.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen { wake.wait() }
                    sleeping.subtract(1, ordering: .sequentiallyConsistent)
                    wake.unlock()
                    idleSince = DispatchTime.now().uptimeNanoseconds
                }
            }
            seen = generation.load(ordering: .sequentiallyConsistent)
            job?(index)
            pending.subtract(1, ordering: .releasing)
        }
    }
}
