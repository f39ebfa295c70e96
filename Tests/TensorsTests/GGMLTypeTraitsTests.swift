import Tensors
import XCTest

/// The type-traits table is consistent, and `BlockQuantizedMatrix` reads and writes exactly the
/// types it marks kept packed, at its block sizes and bytes.
final class GGMLTypeTraitsTests: XCTestCase {
    func testTableRowsAreConsistent() {
        let all = GGMLTypeTraits.all
        XCTAssertEqual(Set(all.map(\.id)).count, all.count, "one row per id")
        XCTAssertEqual(Set(all.map(\.name)).count, all.count, "one row per name")
        for row in all {
            XCTAssertEqual(GGMLTypeTraits(id: row.id), row, row.name)
            XCTAssertEqual(row.isQuantized, row.blockSize > 1, "\(row.name): a quantized type has blocks, a float type does not")
            XCTAssertGreaterThan(row.bytesPerBlock, 0, row.name)
            XCTAssertEqual(row.byteCount(elements: 3 * row.blockSize), 3 * row.bytesPerBlock, row.name)
            if row.isKeptPacked { XCTAssertTrue(row.isQuantized, "\(row.name): only blocks are kept packed") }
        }
        XCTAssertNil(GGMLTypeTraits(id: 12), "Q4_K is not read")
    }

    func testBlockQuantizedMatrixHoldsEveryKeptPackedTypeByteForByte() {
        let (rows, columns) = (3, 96)
        var rng = SeededGenerator(seed: 4)
        for row in GGMLTypeTraits.all where row.isKeptPacked {
            XCTAssertEqual(BlockQuantizedMatrix.blockSize, row.blockSize, row.name)
            // Any bytes are blocks: scales and minimums are kept as bit patterns, never computed on here.
            let file = (0..<(rows * columns / row.blockSize * row.bytesPerBlock)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let packed = file.withUnsafeBytes { BlockQuantizedMatrix(ggmlType: Int(row.id), blocks: $0.baseAddress!, rows: rows, columns: columns)! }
            XCTAssertEqual(packed.format.ggml, row, row.name)
            XCTAssertEqual(packed.format.description, row.name)
            let blocks = packed.ggmlBlocks()!
            XCTAssertEqual(blocks.type, row)
            XCTAssertEqual(blocks.bytes.count, rows * (columns / row.blockSize) * row.bytesPerBlock, row.name)
            XCTAssertTrue(blocks.bytes == file, "\(row.name): the blocks come back as they went in")
        }
    }

    func testBlockQuantizedMatrixRefusesEveryOtherType() {
        let bytes = [UInt8](repeating: 0, count: 4 * 32 * 4)
        for row in GGMLTypeTraits.all where !row.isKeptPacked {
            XCTAssertNil(bytes.withUnsafeBytes { BlockQuantizedMatrix(ggmlType: Int(row.id), blocks: $0.baseAddress!, rows: 4, columns: 32) }, row.name)
        }
        for id in [-1, 12, 1 << 40] {
            XCTAssertNil(bytes.withUnsafeBytes { BlockQuantizedMatrix(ggmlType: id, blocks: $0.baseAddress!, rows: 4, columns: 32) }, "type \(id)")
        }
        XCTAssertNil(BlockQuantizedMatrix(GroupQuantizedMatrix(rows: 1, columns: 32, bits: 4, group: 32, symmetric: true))?.format.ggml)
    }
}
