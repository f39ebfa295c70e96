/// What Sculpt knows of each ggml tensor type it handles, one row per type, as ggml keeps its
/// `type_traits`: reading a GGUF file, packing a grid, the quantized kernels and export all look
/// a type up here instead of restating its numbers. A new format is one row here plus its
/// (de)quantization code in `GGMLBlocks` (and, to compute on it packed, in `BlockQuantizedMatrix`).
///
/// It lives in `Tensors`, the lowest target, because `BlockQuantizedMatrix` reads GGUF blocks;
/// `Transformer`'s `GGMLType` names every ggml id and points to its row here.
public struct GGMLTypeTraits: Sendable, Equatable, CustomStringConvertible {
    /// ggml's type id, as a GGUF tensor info stores it.
    public let id: UInt32
    /// ggml's name for the type.
    public let name: String
    /// Elements per block, consecutive along a row (1 for a plain float type).
    public let blockSize: Int
    public let bytesPerBlock: Int
    /// Blocks of integer codes with scales, as opposed to one float per element.
    public let isQuantized: Bool
    /// `GGUFWriter` encodes Float32 tensors as this type (every type here is decoded).
    public let isWritable: Bool
    /// `BlockQuantizedMatrix` keeps a matrix of this type as its blocks, and the quantized
    /// products compute on them without decoding to Float32.
    public let isKeptPacked: Bool
    /// llama.cpp's `general.file_type` for a model whose matrices are of this type.
    public let llamaFileType: UInt32

    public var description: String { name }

    /// Bytes of `elements` elements, a whole number of blocks.
    public func byteCount(elements: Int) -> Int { elements / blockSize * bytesPerBlock }

    public static let f32 = GGMLTypeTraits(id: 0, name: "F32", blockSize: 1, bytesPerBlock: 4, isQuantized: false,
                                           isWritable: true, isKeptPacked: false, llamaFileType: 0)
    public static let f16 = GGMLTypeTraits(id: 1, name: "F16", blockSize: 1, bytesPerBlock: 2, isQuantized: false,
                                           isWritable: true, isKeptPacked: false, llamaFileType: 1)
    public static let bf16 = GGMLTypeTraits(id: 30, name: "BF16", blockSize: 1, bytesPerBlock: 2, isQuantized: false,
                                            isWritable: false, isKeptPacked: false, llamaFileType: 32)
    /// f16 d, i8 q[32]
    public static let q8_0 = GGMLTypeTraits(id: 8, name: "Q8_0", blockSize: 32, bytesPerBlock: 34, isQuantized: true,
                                            isWritable: true, isKeptPacked: true, llamaFileType: 7)
    /// f16 d, u8 qs[16]
    public static let q4_0 = GGMLTypeTraits(id: 2, name: "Q4_0", blockSize: 32, bytesPerBlock: 18, isQuantized: true,
                                            isWritable: true, isKeptPacked: true, llamaFileType: 2)
    /// f16 d, f16 m, u8 qs[16]
    public static let q4_1 = GGMLTypeTraits(id: 3, name: "Q4_1", blockSize: 32, bytesPerBlock: 20, isQuantized: true,
                                            isWritable: true, isKeptPacked: true, llamaFileType: 3)

    /// Every type Sculpt reads, in the order its messages list them: floats, then 8 and 4 bits.
    public static let all: [GGMLTypeTraits] = [f32, f16, bf16, q8_0, q4_0, q4_1]
}

extension GGMLTypeTraits {
    /// The row of ggml type `id`, or nil for a type Sculpt does not read.
    public init?(id: UInt32) {
        guard let row = Self.all.first(where: { $0.id == id }) else { return nil }
        self = row
    }
}
