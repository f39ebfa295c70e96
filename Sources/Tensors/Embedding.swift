// Token embedding: a row lookup.
//
// Shapes:
//   tokens  (rows)            ids in 0..<vocab
//   table   (vocab, channels)
//   out     (rows, channels)

/// out[i] = table[tokens[i]]
public func embeddingForward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>, table: UnsafePointer<Float>,
                             rows: Int, channels: Int, vocab: Int) {
    for i in 0..<rows {
        let id = Int(tokens[i])
        precondition(id >= 0 && id < vocab, "token id \(id) outside the vocabulary of \(vocab)")
        (out + i * channels).update(from: table + id * channels, count: channels)
    }
}

/// dTable[tokens[i]] += dOut[i]
public func embeddingBackward(dTable: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, tokens: UnsafePointer<Int32>,
                              rows: Int, channels: Int) {
    for i in 0..<rows {
        let row = dTable + Int(tokens[i]) * channels
        let d = dOut + i * channels
        for c in 0..<channels { row[c] += d[c] }
    }
}
