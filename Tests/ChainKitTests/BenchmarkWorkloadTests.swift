import ChainKit
import Foundation
import Testing

@Suite("Benchmark workloads")
struct BenchmarkWorkloadTests {
    @Test("every workload runs, is deterministic, and its checksum depends on the iteration count", arguments: ChainKitWorkload.Kind.allCases)
    func workload(kind: ChainKitWorkload.Kind) throws {
        let workload = ChainKitWorkload(kind)
        let once = try workload.run(iterations: 1)
        #expect(try ChainKitWorkload(kind).run(iterations: 1) == once)
        #expect(try workload.run(iterations: 2) != once)
        #expect(try workload.run(iterations: 0) == 0)
    }

    @Test("workload names are unique and stable")
    func names() {
        let names = ChainKitWorkload.Kind.allCases.map(\.rawValue)
        #expect(Set(names).count == names.count)
        #expect(ChainKitWorkload.Kind(rawValue: "tron-sign-trc20") == .tronSignTRC20)
    }
}
