import Tensors

/// Why a GGUF file could not be read or written. Each case names the key or tensor at fault.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened.
    case unreadable(path: String, reason: String)
    /// The first four bytes are not "GGUF".
    case badMagic
    /// A version other than 2 or 3.
    case unsupportedVersion(UInt32)
    /// The file ends inside a structure.
    case truncated(context: String)
    /// A metadata value type id that GGUF does not define.
    case badValueType(key: String, type: UInt32)
    /// A string that is not UTF-8.
    case badString(context: String)
    /// A tensor's type is not one Sculpt reads.
    case unsupportedTensorType(tensor: String, type: UInt32)
    /// A tensor's shape or data offset is impossible.
    case badTensor(tensor: String, reason: String)
    /// A tensor the model needs is not in the file.
    case missingTensor(String)
    /// A metadata key the model needs is absent or has the wrong type.
    case missingKey(String)
    /// A metadata value is present but unusable.
    case badValue(key: String, reason: String)
    /// The tensor cannot be written in the requested type.
    case cannotQuantize(tensor: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
        case .badMagic: return "not a GGUF file (the magic bytes are not \"GGUF\")"
        case .unsupportedVersion(let v): return "GGUF version \(v) is not supported (only 2 and 3)"
        case .truncated(let context): return "the file is truncated: it ends inside \(context)"
        case .badValueType(let key, let type): return "metadata key \(key) has an unknown value type \(type)"
        case .badString(let context): return "\(context) is not valid UTF-8"
        case .unsupportedTensorType(let tensor, let type):
            return "tensor \(tensor) has type \(GGMLType(rawValue: type).map { "\($0)" } ?? "#\(type)"), which Sculpt does not read (\(GGMLTypeTraits.all.map(\.name).joined(separator: ", ")))"
        case .badTensor(let tensor, let reason): return "tensor \(tensor): \(reason)"
        case .missingTensor(let name): return "the file has no tensor \(name)"
        case .missingKey(let key): return "the file has no metadata key \(key) (or it has the wrong type)"
        case .badValue(let key, let reason): return "metadata \(key): \(reason)"
        case .cannotQuantize(let tensor, let reason): return "cannot write tensor \(tensor): \(reason)"
        }
    }
}

/// ggml tensor type ids, every one named; those Sculpt reads have a row in `GGMLTypeTraits`.
public enum GGMLType: UInt32, CustomStringConvertible, Sendable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, bf16 = 30

    /// The type's row in the table, or nil for a type Sculpt does not read.
    public var traits: GGMLTypeTraits? { GGMLTypeTraits(id: rawValue) }

    /// The type of a row in the table (every row is a ggml type named here).
    public init(_ traits: GGMLTypeTraits) {
        self.init(rawValue: traits.id)!
    }

    public var description: String {
        if let traits { return traits.name }
        switch self {
        case .f64: return "F64"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_1: return "Q8_1"
        case .q2_k: return "Q2_K"
        case .q3_k: return "Q3_K"
        case .q4_k: return "Q4_K"
        case .q5_k: return "Q5_K"
        case .q6_k: return "Q6_K"
        case .q8_k: return "Q8_K"
        case .i8: return "I8"
        case .i16: return "I16"
        case .i32: return "I32"
        case .i64: return "I64"
        default: return "#\(rawValue)"  // not reached: the types Sculpt reads are named by their rows
        }
    }
}
