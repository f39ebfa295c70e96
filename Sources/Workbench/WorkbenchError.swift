/// Why a session request could not be done. Each says what to do instead.
public enum WorkbenchError: Error, CustomStringConvertible, Equatable {
    /// A command needs a model and none is loaded.
    case noModel
    /// A command needs text and none is chosen.
    case noData
    /// The text is too short for what was asked.
    case notEnoughTokens(have: Int, need: Int)
    /// A value the engine cannot use, with the reason.
    case invalid(String)

    public var description: String {
        switch self {
        case .noModel: return "no model is loaded: use `model load smollm2`, `model load PATH.gguf` or `model tiny`"
        case .noData: return "no text is chosen: use `data text austen` or `data text PATH`"
        case .notEnoughTokens(let have, let need): return "the text has \(have) tokens; this needs at least \(need)"
        case .invalid(let reason): return reason
        }
    }
}
