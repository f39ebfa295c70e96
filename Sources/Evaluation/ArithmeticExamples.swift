import Foundation
import Tensors

/// Arithmetic questions made by code in BIG-bench's `arithmetic` format ("What is 80 plus 29?",
/// the answer among numeric distractors and two words), for training: BIG-bench's canary forbids
/// training on its own files. Questions that BIG-bench asks are left out when its files are given,
/// so what a model is trained on and what it is judged on never overlap.
public enum ArithmeticExamples {
    /// `count` questions with 1 to `maxDigits` digits, the same for the same seed, none of whose
    /// inputs is in `excluded`.
    public static func generate(count: Int, maxDigits: Int = 3, seed: UInt64, excluding excluded: Set<String> = []) -> [MultipleChoiceExample] {
        var rng = SeededGenerator(seed: seed)
        func number(_ digits: Int) -> Int {
            let low = digits == 1 ? 0 : Int(pow(10, Double(digits - 1)))
            return low + Int(rng.next() % UInt64(Int(pow(10, Double(digits))) - low))
        }
        var out = [MultipleChoiceExample]()
        var seen = excluded
        var attempts = 0
        while out.count < count && attempts < count * 50 {
            attempts += 1
            let digits = 1 + Int(rng.next() % UInt64(max(1, maxDigits)))
            var a = number(digits), b = number(digits)
            let operation = Int(rng.next() % 4)
            let (word, answer): (String, Int)
            switch operation {
            case 0: (word, answer) = ("plus", a + b)
            case 1: (word, answer) = ("minus", a - b)
            case 2: (word, answer) = ("times", a * b)
            default:
                // Whole quotients only, as BIG-bench asks: a = b · q.
                b = max(1, b)
                a = b * number(max(1, digits - 1))
                (word, answer) = ("divided by", a / b)
            }
            let input = "What is \(a) \(word) \(b)?"
            guard seen.insert(input).inserted else { continue }
            var choices = Set([String(answer)])
            while choices.count < 5 {
                // Near misses and one far number, as BIG-bench's distractors are.
                let offset = [1, 10, 100, -1, -10][Int(rng.next() % 5)] * (1 + Int(rng.next() % 9))
                choices.insert(String(choices.count == 4 ? number(digits + 2) : answer + offset))
            }
            let all = Array(choices) + ["banana", "house"]
            let sorted = all.sorted()
            out.append(MultipleChoiceExample(input: input, choices: sorted, scores: sorted.map { $0 == String(answer) ? 1 : 0 }))
        }
        return out
    }

    /// Prompt/answer pairs in the format a task scores: the prompt ends where the answer starts.
    public static func pairs(_ examples: [MultipleChoiceExample], format: PromptFormat = PromptFormat()) -> [(prompt: String, answer: String)] {
        examples.map { (format.prompt($0), $0.answer) }
    }
}

/// Prompt/answer lines of a JSONL file: `{"prompt": "...", "answer": "..."}` per line.
public enum ExampleFile {
    public static func load(_ path: String) throws -> [(prompt: String, answer: String)] {
        let expanded = (path as NSString).expandingTildeInPath
        guard let data = FileManager.default.contents(atPath: expanded), let text = String(data: data, encoding: .utf8) else {
            throw TaskError.missing(path: expanded, hint: FileManager.default.fileExists(atPath: expanded) ? "not readable UTF-8 text" : "no such file")
        }
        var out = [(prompt: String, answer: String)]()
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any],
                  let prompt = object["prompt"] as? String, let answer = object["answer"] as? String else {
                throw TaskError.malformed(path: expanded, reason: "line \(number + 1) is not {\"prompt\": …, \"answer\": …}")
            }
            out.append((prompt, answer))
        }
        guard !out.isEmpty else { throw TaskError.empty(expanded) }
        return out
    }

    /// Writes the pairs as the JSONL lines `load` reads, whole or not at all.
    public static func save(_ pairs: [(prompt: String, answer: String)], to path: String) throws {
        var text = ""
        for pair in pairs {
            let line = try JSONSerialization.data(withJSONObject: ["prompt": pair.prompt, "answer": pair.answer], options: [.sortedKeys, .withoutEscapingSlashes])
            text += String(decoding: line, as: UTF8.self) + "\n"
        }
        try writeWhole(Data(text.utf8), to: path)
    }

    /// Writes whole or not at all (Foundation's atomic write: a temporary file, then a rename), with
    /// an error that names the path and why.
    public static func writeWhole(_ data: Data, to path: String) throws {
        let expanded = (path as NSString).expandingTildeInPath
        do {
            try data.write(to: URL(fileURLWithPath: expanded), options: .atomic)
        } catch {
            let directory = (expanded as NSString).deletingLastPathComponent
            throw TaskError.unwritable(path: expanded, reason: FileManager.default.fileExists(atPath: directory.isEmpty ? "." : directory)
                                        ? error.localizedDescription : "no directory \(directory)")
        }
    }
}
