import Foundation

/// One argument a command takes, as its help page and its parser both see it.
public struct ArgumentSpec: Sendable {
    public enum Kind: Sendable {
        /// Given by position, before or between options.
        case positional
        /// Given as `name=value`.
        case option
    }

    public enum ValueType: Sendable {
        case integer(ClosedRange<Int>)
        case number(ClosedRange<Double>)
        case choice([String])
        case flag
        /// Comma-separated values from a set (`q,k,v`); `all` stands for every one.
        case choiceList([String])
        case text
        /// Every remaining positional word, joined by single spaces.
        case words
    }

    public var name: String
    public var kind: Kind
    public var type: ValueType
    public var help: String
    public var defaultValue: String?
    public var required: Bool

    public static func positional(_ name: String, _ type: ValueType, required: Bool = true, help: String) -> ArgumentSpec {
        ArgumentSpec(name: name, kind: .positional, type: type, help: help, defaultValue: nil, required: required)
    }

    public static func option(_ name: String, _ type: ValueType, default value: String? = nil, help: String) -> ArgumentSpec {
        ArgumentSpec(name: name, kind: .option, type: type, help: help, defaultValue: value, required: false)
    }

    /// The values completion offers for this argument.
    public var choices: [String] {
        switch type {
        case .choice(let values): return values
        case .choiceList(let values): return values + ["all"]
        case .flag: return ["yes", "no"]
        default: return []
        }
    }

    /// How the type reads in help: `N (1–100)`, `stdout|stderr`, `TEXT`.
    public var typeDescription: String {
        switch type {
        case .integer(let range):
            return range.upperBound == Int.max ? "integer ≥ \(range.lowerBound)" : "integer \(range.lowerBound)…\(range.upperBound)"
        case .number(let range):
            return range.upperBound.isInfinite ? "number ≥ \(range.lowerBound.formatted)" : "number \(range.lowerBound.formatted)…\(range.upperBound.formatted)"
        case .choice(let values): return values.joined(separator: "|")
        case .choiceList(let values): return "list of " + values.joined(separator: ",") + " (or all)"
        case .flag: return "yes|no"
        case .text: return "text"
        case .words: return "text…"
        }
    }

    /// The usage fragment: `NAME`, `[NAME]`, `name=…`, `[name=…]`.
    public var usage: String {
        switch kind {
        case .positional:
            let word = name.uppercased() + (type.isWords ? "…" : "")
            return required ? word : "[\(word)]"
        case .option:
            let value: String
            if case .choice(let values) = type { value = values.joined(separator: "|") } else if case .flag = type { value = "yes|no" } else if case .choiceList = type { value = "A,B,…" } else { value = name.uppercased() }
            return "[\(name)=\(value)]"
        }
    }

    /// Parses and checks one value.
    func parse(_ raw: String) throws -> ArgumentValue {
        switch type {
        case .integer(let range):
            guard let n = Int(raw.replacingOccurrences(of: "_", with: "")) else {
                throw CommandError(.badValue, "`\(name)` needs an integer, not `\(raw)`", word: raw)
            }
            guard range.contains(n) else {
                throw CommandError(.badValue, "`\(name)` must be in \(typeDescription.replacingOccurrences(of: "integer ", with: "")), not \(n)", word: raw)
            }
            return .integer(n)
        case .number(let range):
            var text = raw
            var scale = 1.0
            if text.hasSuffix("%") { text.removeLast(); scale = 0.01 }
            guard let x = Double(text), x.isFinite else {
                throw CommandError(.badValue, "`\(name)` needs a number, not `\(raw)`", word: raw)
            }
            guard range.contains(x * scale) else {
                throw CommandError(.badValue, "`\(name)` must be in \(typeDescription.replacingOccurrences(of: "number ", with: "")), not \(raw)", word: raw)
            }
            return .number(x * scale)
        case .choice(let values):
            if let match = values.first(where: { $0.caseInsensitiveCompare(raw) == .orderedSame }) { return .text(match) }
            throw CommandError(.badValue, "`\(name)` must be one of \(values.map { "`\($0)`" }.joined(separator: ", ")), not `\(raw)`",
                               word: raw, suggestion: nearest(raw, in: values))
        case .flag:
            switch raw.lowercased() {
            case "yes", "true", "on", "1": return .flag(true)
            case "no", "false", "off", "0": return .flag(false)
            default: throw CommandError(.badValue, "`\(name)` must be yes or no, not `\(raw)`", word: raw)
            }
        case .choiceList(let values):
            if raw.lowercased() == "all" { return .list(values) }
            var out = [String]()
            for item in raw.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
                guard let match = values.first(where: { $0.caseInsensitiveCompare(item) == .orderedSame }) else {
                    throw CommandError(.badValue, "`\(name)` takes \(values.joined(separator: ",")) (or all), not `\(item)`",
                                       word: raw, suggestion: nearest(item, in: values))
                }
                if !out.contains(match) { out.append(match) }
            }
            return .list(out)
        case .text, .words:
            return .text(raw)
        }
    }
}

extension ArgumentSpec.ValueType {
    var isWords: Bool {
        if case .words = self { return true }
        return false
    }
}

private extension Double {
    var formatted: String { self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self) }
}

/// A parsed value.
public enum ArgumentValue: Equatable, Sendable {
    case integer(Int)
    case number(Double)
    case text(String)
    case flag(Bool)
    case list([String])
}

/// The parsed arguments of one command line, by name, defaults applied.
public struct Arguments: Sendable {
    public var values: [String: ArgumentValue]

    public init(values: [String: ArgumentValue] = [:]) { self.values = values }

    public func has(_ name: String) -> Bool { values[name] != nil }

    public func integer(_ name: String) -> Int? {
        if case .integer(let n)? = values[name] { return n }
        return nil
    }

    public func number(_ name: String) -> Double? {
        switch values[name] {
        case .number(let x)?: return x
        case .integer(let n)?: return Double(n)
        default: return nil
        }
    }

    public func text(_ name: String) -> String? {
        if case .text(let s)? = values[name] { return s }
        return nil
    }

    public func flag(_ name: String) -> Bool? {
        if case .flag(let b)? = values[name] { return b }
        return nil
    }

    public func list(_ name: String) -> [String]? {
        if case .list(let l)? = values[name] { return l }
        return nil
    }
}
