import Foundation
import Tensors

/// The safetensors container (Hugging Face): an 8-byte little-endian header length, a JSON header
/// `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then raw
/// little-endian data. Sculpt writes and reads F32.
public enum Safetensors {
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String] = [:]) -> Data {
        var header = [String: Any]()
        var offset = 0
        for (name, tensor) in tensors {
            header[name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + tensor.byteCount]]
            offset += tensor.byteCount
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = (try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data("{}".utf8)
        // Pad the header with spaces so the data starts 8-byte aligned.
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, tensor) in tensors { out.append(UnsafeBufferPointer(start: tensor.data, count: tensor.count)) }
        return out
    }

    /// Tensors by name, with their row-major shapes.
    public static func decode(_ data: Data, path: String) throws -> [String: Tensor] {
        func fail(_ reason: String) -> LoRAError { .unreadable(path: path, reason: reason) }
        guard data.count >= 8 else { throw fail("shorter than a safetensors header") }
        let headerLength = data.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard headerLength > 0, 8 + headerLength <= data.count else { throw fail("the header length \(headerLength) runs past the file") }
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any] else {
            throw fail("the header is not a JSON object")
        }
        let base = 8 + headerLength
        var out = [String: Tensor]()
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = (entry["shape"] as? [NSNumber])?.map(\.intValue),
                  let offsets = (entry["data_offsets"] as? [NSNumber])?.map(\.intValue), offsets.count == 2 else {
                throw fail("tensor \(name) has an incomplete header entry")
            }
            guard dtype == "F32" else { throw fail("tensor \(name) is \(dtype); Sculpt reads F32 adapters") }
            let tensor = Tensor(zeros: shape)
            guard offsets[1] - offsets[0] == tensor.byteCount, base + offsets[1] <= data.count, offsets[0] >= 0 else {
                throw fail("tensor \(name): its data does not match its shape \(shape) or runs past the file")
            }
            data.withUnsafeBytes { bytes in
                tensor.data.withMemoryRebound(to: UInt8.self, capacity: tensor.byteCount) {
                    $0.update(from: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + base + offsets[0], count: tensor.byteCount)
                }
            }
            out[name] = tensor
        }
        return out
    }
}
