import Foundation

/// Why text could not be had.
public enum TextCorpusError: Error, CustomStringConvertible, Equatable {
    /// The Austen novels are not in the cache.
    case austenMissing(directory: String)
    /// A split name that is not one of the novels.
    case unknownSplit(String, known: [String])
    /// A file that could not be read as UTF-8 text.
    case unreadable(path: String, reason: String)
    /// The text is empty.
    case empty(String)

    public var description: String {
        switch self {
        case .austenMissing(let directory):
            return "the Austen novels are not in \(directory): run scripts/setup.sh (it fetches and verifies them)"
        case .unknownSplit(let name, let known): return "no split \(name); the splits are \(known.joined(separator: ", "))"
        case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
        case .empty(let name): return "\(name) holds no text"
        }
    }
}

/// Text by split: the six Austen novels from the cache, or a file of the user's.
public struct TextCorpus: Sendable {
    public let name: String
    /// The Austen novels (with train/validation/test roles), or text of the user's.
    public let isAusten: Bool
    /// Split name → text.
    public let splits: [(name: String, text: String)]

    /// The novels, by the split names users type.
    public static let austenNovels = ["emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice", "sensesensibility"]

    /// Suggested use (DATA.md): train on Emma and Mansfield Park, validate on Northanger Abbey,
    /// report on Persuasion.
    public static let austenRoles = ["train": ["emma", "mansfieldpark"], "validation": ["northangerabbey"], "test": ["persuasion"]]

    public static func cacheDirectory() -> String {
        (ProcessInfo.processInfo.environment["SCULPT_CACHE"] ?? NSHomeDirectory() + "/.cache/sculpt")
    }

    /// The Austen novels from `~/.cache/sculpt/data/austen` (decoded and verified by the set-up).
    public static func austen(directory: String? = nil) throws -> TextCorpus {
        let directory = directory ?? cacheDirectory() + "/data/austen"
        var splits = [(String, String)]()
        for novel in austenNovels {
            let path = directory + "/" + novel + ".txt"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw TextCorpusError.austenMissing(directory: directory)
            }
            splits.append((novel, text))
        }
        return TextCorpus(name: "austen", isAusten: true, splits: splits)
    }

    /// One file as a single split named after it.
    public static func file(_ path: String) throws -> TextCorpus {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "not UTF-8 text" : "no such file"
            throw TextCorpusError.unreadable(path: path, reason: reason)
        }
        guard !text.isEmpty else { throw TextCorpusError.empty(path) }
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return TextCorpus(name: name, isAusten: false, splits: [(name, text)])
    }

    /// The text of one split, or of a role (train, validation, test) for Austen.
    public func text(_ split: String) throws -> String {
        if let hit = splits.first(where: { $0.name == split }) { return hit.text }
        if isAusten, let novels = TextCorpus.austenRoles[split] {
            return try novels.map { try text($0) }.joined(separator: "\n")
        }
        throw TextCorpusError.unknownSplit(split, known: splits.map(\.name) + (isAusten ? TextCorpus.austenRoles.keys.sorted() : []))
    }

    /// Whitespace-separated words, for perplexity per word.
    public static func wordCount(_ text: String) -> Int {
        text.split(whereSeparator: { $0.isWhitespace }).count
    }
}
