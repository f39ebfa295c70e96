// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Sculpt",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sculpt-kernel", targets: ["sculpt-kernel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // System libraries: the mission's libzmq and OpenSSL.
        // libzmq.pc drags in krb5 include flags SwiftPM refuses; zmq.h is on the default path anyway.
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),

        // Kernel side: knows nothing of compression.
        .target(name: "JupyterProtocol", dependencies: ["COpenSSL"]),
        .target(name: "JupyterKernel", dependencies: [
            "JupyterProtocol", "CZeroMQ",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Engine side: knows nothing of Jupyter.
        // AVX2 + FMA (Haswell and later) for the vectorized element-wise kernels; every machine Sculpt
        // runs on here has it (and AVX-512). GEMM is OpenBLAS's, which picks its own kernels.
        // Optimized in debug builds too: the SIMD kernels are generic code that is orders of
        // magnitude slower unoptimized, and the numeric tests would otherwise take minutes.
        // The AVX-512 VNNI quantized kernels, compiled for Cascade Lake (the first CPU with VNNI):
        // a module of their own, since Swift has no per-function target. Tensors calls them only
        // where the CPU reports those features (KernelPath).
        // Software prefetch (one inline C function: Swift cannot import _mm_prefetch, a macro).
        .target(name: "CPrefetch"),
        .target(name: "QuantizedKernelsAVX512", dependencies: ["CPrefetch"],
                swiftSettings: [.unsafeFlags(["-target-cpu", "cascadelake"], .when(platforms: [.linux])),
                                .unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "Tensors", dependencies: ["CBLAS", "CPrefetch", "QuantizedKernelsAVX512"],
                swiftSettings: [.unsafeFlags(["-target-cpu", "haswell"], .when(platforms: [.linux])),
                                .unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "Transformer", dependencies: ["Tensors"]),
        .target(name: "Evaluation", dependencies: ["Transformer", "Tensors"]),
        .target(name: "Compression", dependencies: ["Transformer", "Tensors"]),
        // Multi-objective search: Foundation only; it does not know what a genome means.
        .target(name: "Search", swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "Workbench", dependencies: ["Compression", "Search", "Evaluation", "Transformer", "Tensors"]),

        // Presentation and the command language.
        .target(name: "Display"),
        .target(name: "Commands", dependencies: ["Display", "Workbench", "Evaluation", "Compression", "Search", "Transformer", "Tensors"]),

        // Composition root: the only place where Commands meets JupyterKernel.
        .executableTarget(name: "sculpt-kernel", dependencies: [
            "JupyterKernel", "JupyterProtocol", "Commands", "Display", "Workbench", "Evaluation", "Transformer", "Compression", "Tensors",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .testTarget(name: "JupyterProtocolTests", dependencies: ["JupyterProtocol"]),
        .testTarget(name: "JupyterKernelTests", dependencies: ["JupyterKernel", "JupyterProtocol", "CZeroMQ"]),
        .testTarget(name: "DisplayTests", dependencies: ["Display"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        .testTarget(name: "TransformerTests", dependencies: ["Transformer", "Tensors"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Transformer", "Tensors"]),
        .testTarget(name: "SearchTests", dependencies: ["Search"]),
        .testTarget(name: "CompressionTests", dependencies: ["Compression", "Evaluation", "Transformer", "Tensors"]),
        .testTarget(name: "CommandsTests", dependencies: ["Commands", "Display", "Workbench", "Compression", "Evaluation", "Transformer", "Tensors"]),
    ],
    // Swift 5 mode: the kernel shares lock-guarded state across its threads by design
    // (sockets on the main thread, execution on a worker), which strict checking cannot see.
    swiftLanguageModes: [.v5]
)
