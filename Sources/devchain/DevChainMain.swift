import ArgumentParser
import DevChain
import GatewayCore
import GatewayRuntime
import Logging
import ServiceLifecycle

@main
struct DevChainMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devchain",
        abstract: "A local chain node speaking the Ethereum JSON-RPC and TRON HTTP API subsets the gateway uses.")

    @Option(help: "Address to listen on.") var listen = "127.0.0.1:8545"

    func run() async throws {
        let address = try ListenAddress(parsing: listen, key: "--listen")
        Observability.bootstrapLogging(level: .info)
        let logger = Logger(label: "gateway.devchain")
        logger.info("devchain listening on \(address)")
        try await StageRunner.runServices([.init(service: DevChainServer(listen: address).application(logger: logger))], logger: logger)
    }
}
