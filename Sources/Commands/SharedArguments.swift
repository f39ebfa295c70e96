import Foundation

/// Arguments that several commands take, declared and read in one place.
extension CommandTable {
    /// The calibration text that Wanda, GPTQ and sensitivity read their activations from:
    /// `calibration_split` tokenized whole without BOS, its first `calibration_windows ×
    /// calibration_len` tokens as consecutive windows.
    static func calibrationOptions(_ whose: String) -> [ArgumentSpec] {
        [
            .option("calibration_split", .text, help: "\(whose) calibration text (Austen default: emma)"),
            .option("calibration_windows", .integer(1...4096), default: "16", help: "\(whose) calibration windows"),
            .option("calibration_len", .integer(1...8192), default: "512", help: "tokens per calibration window"),
        ]
    }

    /// Parses a layer list: "3", "0-9", "1,3,5-7".
    static func parseLayers(_ text: String, count: Int) throws -> [Int] {
        var out = [Int]()
        for part in text.split(separator: ",") {
            let ends = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard (1...2).contains(ends.count), let a = ends.first!, let b = ends.last! , a <= b else {
                throw CommandError(.badValue, "`layers` takes numbers and ranges such as 0-9 or 1,3,5-7, not `\(part)`", word: "layers")
            }
            guard a >= 0, b < count else { throw CommandError(.badValue, "layer \(a < 0 ? a : b) outside 0…\(count - 1)", word: "layers") }
            out += Array(a...b)
        }
        return Array(Set(out)).sorted()
    }

    /// A share of the MLP, `75%` or `0.75`: finite and in (0, 1], or nil.
    static func fraction(_ text: String) -> Double? {
        guard let v = text.hasSuffix("%") ? Double(text.dropLast()).map({ $0 / 100 }) : Double(text), v.isFinite, v > 0, v <= 1 else { return nil }
        return v
    }
}

extension Arguments {
    /// The values of `CommandTable.calibrationOptions`.
    var calibration: (split: String?, windows: Int, length: Int) {
        (text("calibration_split"), integer("calibration_windows")!, integer("calibration_len")!)
    }
}
