import ChainKit
import Foundation
import Testing

/// Loads the shared, independently generated vectors from `../shared/vectors` beside the repository root.
enum Vectors {
    /// `<repo>/../shared/vectors`, from this file's location (`<repo>/Tests/ChainKitTests/Vectors.swift`).
    static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // ChainKitTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repo root
        .appendingPathComponent("..")
        .appendingPathComponent("shared")
        .appendingPathComponent("vectors")
        .standardizedFileURL

    /// Decodes one vector file; a missing file or folder throws, which fails the calling test (never a skip).
    static func load<T: Decodable>(_ type: T.Type, from name: String) throws -> T {
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw MissingVectors(path: url.path)
        }
        let data = try Data(contentsOf: url)
        return try JSONDecoder().decode(T.self, from: data)
    }

    struct MissingVectors: Error, CustomStringConvertible {
        let path: String
        var description: String { "test vectors not found at \(path): clone the shared folder beside the repository" }
    }
}

/// Hex → bytes for test inputs (accepts `0x`); a malformed literal fails the test.
func hex(_ string: String) throws -> Data {
    try Hex.decode(string)
}
