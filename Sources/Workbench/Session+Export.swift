import Compression
import Foundation
import Tensors
import Transformer

extension Session {
    /// Writes the model as it computes now to a GGUF file (adapters folded in unless `merge` is
    /// false, the active subnet cut out), with the recipe in its metadata.
    public func exportGGUF(to path: String, type: GGUFExport.TensorType, merge: Bool) throws -> GGUFExport.Report {
        let model = try requireModel()
        try checkWritable(path)
        var steps = recipe.map(\.description)
        if let lora, !lora.isMerged, merge { steps.append("exported with the adapters folded in at their active ranks") }
        let report = try GGUFExport.write(model: model, to: path, type: type, name: modelCard?.name ?? "sculpt", recipe: steps, foldAdapters: merge)
        let widths = Set(report.ffnWidths).count == 1 ? "MLP \(report.ffnWidths[0])"
            : "MLP \(report.ffnWidths.min()!)–\(report.ffnWidths.max()!) per layer"
        let depth = report.ffnWidths.count < model.config.layers ? ", \(report.ffnWidths.count) of \(model.config.layers) layers" : ""
        record("exported gguf", "\(path) (\(type.rawValue), \(report.architecture), \(widths)\(depth)"
               + (report.adaptersFolded > 0 ? ", \(report.adaptersFolded) adapters folded in)" : ")"))
        return report
    }

    /// Writes the unmerged adapters as a llama.cpp LoRA GGUF.
    public func exportAdaptersGGUF(to path: String) throws -> GGUFExport.AdapterReport {
        let model = try requireModel()
        let set = try requireLoRA()
        try checkWritable(path)
        return try GGUFExport.writeAdapters(model: model, set: set, to: path, name: (modelCard?.name ?? "sculpt") + " adapters",
                                            recipe: recipe.map(\.description))
    }

    /// A clear error before any work when the file cannot be written.
    func checkWritable(_ path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        let folder = directory.isEmpty ? "." : directory
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw WorkbenchError.invalid("cannot write \(path): the folder \(folder) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: folder) else { throw WorkbenchError.invalid("cannot write \(path): \(folder) is not writable") }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw WorkbenchError.invalid("cannot write \(path): it is a folder")
        }
    }
}
