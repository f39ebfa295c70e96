import Foundation
import Tensors

/// Multiple-choice tasks generated from the Austen novels, which ship with Sculpt: tasks a 135M
/// model is well above chance on, with a test split from a novel no train split reads.
///
/// - `austen_lambada`, LAMBADA's construction (Paperno et al. 2016) made mechanical: a passage of
///   50 to 150 words of context (as many whole sentences of the chapter as fit) and a target sentence whose last word also occurs in the context
///   but not earlier in the target sentence (LAMBADA's human filter asked that the word be guessable
///   from the passage and not from its last sentence alone). The prompt is the passage up to that
///   word; the choices are the word and three other words of the context, of the same capitalisation
///   (names against names), none a function word. Scored as a choice (`acc`, chance 25 %) and as
///   LAMBADA is, the greedy continuation equal to the word (`greedy`).
/// - `austen_next_sentence`: at least 100 words of context (whole sentences of the chapter), then the
///   true next sentence (6 to 40 words) among four
///   sentences of the same chapter, the other three taken from outside the context and its
///   neighbourhood, of 2/3 to 3/2 its length and opening the same way (with a quote or not).
///
/// Splits: `test` reads Persuasion only; `train` reads the other five novels. Each task is fixed:
/// the same seed for every user, so `limit=N` (the first N of a seeded shuffle over the whole split)
/// means the same examples everywhere.
public enum AustenTasks {
    public enum Split: String, CaseIterable, Sendable {
        case train, test
    }

    public static let names = ["austen_lambada", "austen_next_sentence"]

    public static func novels(_ split: Split) -> [String] {
        split == .test ? ["persuasion"] : TextCorpus.austenNovels.filter { $0 != "persuasion" }
    }

    /// The name a task carries in tables: the test split plain, the train split marked.
    public static func taskName(_ name: String, split: Split) -> String {
        split == .test ? name : name + ".train"
    }

    public static func describe(_ name: String) -> String {
        name == "austen_lambada"
            ? "the last word of a passage, among 4 words of the passage (LAMBADA's construction); also greedy exact match"
            : "the next sentence after a passage, among 4 sentences of the same chapter"
    }

    /// The task `name` on `split`, generated from `corpus` (the Austen novels). Generated once per
    /// process and split.
    public static func task(_ name: String, split: Split, corpus: @autoclosure () throws -> TextCorpus) throws -> MultipleChoiceTask {
        guard names.contains(name) else { throw TaskError.missing(path: name, hint: "the generated tasks are \(names.joined(separator: ", "))") }
        let key = name + "/" + split.rawValue
        if let cached = cache.withLock({ $0[key] }) { return cached }
        let task = try generate(name, split: split, corpus: try corpus())
        cache.withLock { $0[key] = task }
        return task
    }

    /// The task made anew from `c`, without the cache.
    static func generate(_ name: String, split: Split, corpus c: TextCorpus) throws -> MultipleChoiceTask {
        var examples = [MultipleChoiceExample]()
        for (n, novel) in novels(split).enumerated() {
            let chapters = NovelSentences(text: try c.text(novel)).chapters
            var rng = SeededGenerator(seed: (name == "austen_lambada" ? 0x1A3B_DA00 : 0x5E47_E4CE) &+ UInt64(n))
            examples += name == "austen_lambada" ? lambada(chapters, rng: &rng) : nextSentence(chapters, rng: &rng)
        }
        var order = SeededGenerator(seed: split == .test ? 7 : 11)
        examples.shuffle(using: &order)
        guard !examples.isEmpty else { throw TaskError.empty(name) }
        var format = PromptFormat()
        format.inputPrefix = ""
        format.outputPrefix = ""
        format.appendChoices = false
        format.shotSeparator = "\n\n"
        let source = "generated from " + novels(split).joined(separator: ", ") + " (\(split.rawValue) split): " + describe(name)
        return MultipleChoiceTask(name: taskName(name, split: split), format: format, examples: examples,
                                  source: source, scoresGreedy: name == "austen_lambada")
    }

    private static let cache = GeneratedTaskCache()

    /// Function words: never a target or a distractor.
    static let functionWords: Set<String> = Set("""
        a about above after again against all almost also am an and any are as at be because been before being below \
        between both but by can could did do does doing done down during each either else ever every few for from \
        further had has have having he her here hers herself him himself his how however i if in into is it its itself \
        just least less let like may me might mine more most much must my myself neither never no nor not now of off \
        often on once one only or other ought our ours ourselves out over own perhaps quite rather said same shall she \
        should since so some still such than that the their theirs them themselves then there these they this those \
        though through thus till to too under until up upon us very was we were what when where whether which while \
        who whom whose why will with within without would yet you your yours yourself yourselves mr mrs miss sir lady
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))

    /// A word that can be a target or a distractor: letters only, three or more, capitalised at
    /// most on its first letter, not a function word.
    static func isContentWord(_ word: Substring) -> Bool {
        guard word.count >= 3, word.allSatisfy({ $0.isLetter && $0.isASCII }) else { return false }
        guard word.dropFirst().allSatisfy({ $0.isLowercase }) else { return false }
        return !functionWords.contains(word.lowercased())
    }

    /// The words of a text: its runs of ASCII letters.
    static func words(_ text: String) -> [Substring] {
        text.split(whereSeparator: { !($0.isLetter && $0.isASCII) })
    }

    static func lambada(_ chapters: [[NovelSentences.Sentence]], rng: inout SeededGenerator) -> [MultipleChoiceExample] {
        var out = [MultipleChoiceExample]()
        for chapter in chapters {
            var i = 1
            while i < chapter.count {
                defer { i += 1 }
                let target = chapter[i]
                guard target.wordCount >= 5, let start = contextStart(chapter, before: i, minWords: 50, maxWords: 150, widest: true) else { continue }
                // The target: the sentence's last run of letters, after a space, nothing but
                // punctuation after it.
                let text = target.text
                guard let lastLetter = text.lastIndex(where: { $0.isLetter }) else { continue }
                var wordStart = lastLetter
                while wordStart > text.startIndex, text[text.index(before: wordStart)].isLetter { wordStart = text.index(before: wordStart) }
                guard wordStart > text.startIndex, text[text.index(before: wordStart)] == " " else { continue }
                let word = text[wordStart...lastLetter]
                guard isContentWord(word) else { continue }
                let lower = word.lowercased()
                if words(String(text[..<wordStart])).contains(where: { $0.lowercased() == lower }) { continue }
                // Candidates: the context's content words (not a sentence's first word), of the
                // target's capitalisation, distinct.
                var candidates = [String](), seen = Set([lower])
                var present = false
                for s in chapter[start..<i] {
                    for (k, w) in words(s.text).enumerated() {
                        if w.lowercased() == lower { present = true }
                        guard k > 0, isContentWord(w), w.first!.isUppercase == word.first!.isUppercase,
                              seen.insert(w.lowercased()).inserted else { continue }
                        candidates.append(String(w))
                    }
                }
                guard present, candidates.count >= 3 else { continue }
                candidates.shuffle(using: &rng)
                let prefix = String(text[..<text.index(before: wordStart)])
                let passage = NovelSentences.join(chapter[start..<i]) + (target.startsParagraph ? "\n" : " ") + prefix
                out.append(example(input: passage, correct: " " + word, others: candidates.prefix(3).map { " " + $0 }, rng: &rng))
                i += 2
            }
        }
        return out
    }

    static func nextSentence(_ chapters: [[NovelSentences.Sentence]], rng: inout SeededGenerator) -> [MultipleChoiceExample] {
        var out = [MultipleChoiceExample]()
        func opensWithQuote(_ s: NovelSentences.Sentence) -> Bool { s.text.first == "\"" || s.text.first == "'" }
        for chapter in chapters {
            var i = 1
            while i < chapter.count {
                defer { i += 1 }
                let truth = chapter[i]
                guard (6...40).contains(truth.wordCount), let start = contextStart(chapter, before: i, minWords: 100, maxWords: 250) else { continue }
                let low = Double(truth.wordCount) * 2 / 3, high = Double(truth.wordCount) * 3 / 2
                var candidates = chapter.indices.filter { k in
                    (k < start - 2 || k > i + 2) && Double(chapter[k].wordCount) >= low && Double(chapter[k].wordCount) <= high
                        && opensWithQuote(chapter[k]) == opensWithQuote(truth) && chapter[k].text != truth.text
                }
                guard candidates.count >= 3 else { continue }
                candidates.shuffle(using: &rng)
                let separator = truth.startsParagraph ? "\n" : " "
                out.append(example(input: NovelSentences.join(chapter[start..<i]), correct: separator + truth.text,
                                   others: candidates.prefix(3).map { separator + chapter[$0].text }, rng: &rng))
                i += 3
            }
        }
        return out
    }

    /// The first sentence of the shortest run ending before `i` with at least `minWords` words (with
    /// `widest`, of the longest run of at most `maxWords`), or nil when no run of the chapter has
    /// between `minWords` and `maxWords` words.
    static func contextStart(_ chapter: [NovelSentences.Sentence], before i: Int, minWords: Int, maxWords: Int, widest: Bool = false) -> Int? {
        var words = 0, start = i
        while start > 0, words < minWords || (widest && words + chapter[start - 1].wordCount <= maxWords) {
            start -= 1
            words += chapter[start].wordCount
        }
        return words >= minWords && words <= maxWords ? start : nil
    }

    static func example(input: String, correct: String, others: [String], rng: inout SeededGenerator) -> MultipleChoiceExample {
        var choices = [(correct, 1.0)] + others.map { ($0, 0.0) }
        choices.shuffle(using: &rng)
        return MultipleChoiceExample(input: input, choices: choices.map(\.0), scores: choices.map(\.1), answer: correct)
    }
}

/// Generated tasks by name and split, shared by every session of the process.
private final class GeneratedTaskCache: @unchecked Sendable {
    private var storage = [String: MultipleChoiceTask]()
    private let lock = NSLock()

    func withLock<T>(_ body: (inout [String: MultipleChoiceTask]) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&storage)
    }
}
