import ArgumentParser
import GatewayCore
import GatewayRuntime
import GatewayStages

@main
struct ChainWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chain-worker",
        abstract: "Chain confirmation polling: scans blocks for deposits, confirms our transactions, handles reorgs.",
        discussion: """
            One scanner per chain in workers.yml (chains:) is active across all chain-worker processes: it holds a \
            lease in gateway.chain_scanners, and another process takes over once the lease (stages.chain.lease) runs \
            out. Deposits are credited and called back at the chain's confirmation depth; reorganisations deeper \
            than that raise an alert in monitor.reorg_alerts.

            """ + ProcessOptions.discussion)

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        try await StageRunner.run(.chain, options: options, makeParts: ChainStage.parts)
    }
}
