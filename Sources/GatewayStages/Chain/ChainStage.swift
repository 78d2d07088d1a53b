import ChainKit
import GatewayCore
import GatewayRuntime
import GatewayServices
import Logging

/// The chain stage: a deposit scanner per configured chain (one active per chain across every
/// `chain-worker`), and the worker for chain jobs.
public enum ChainStage {
    /// Handlers by job kind: `confirm` follows a payment to its confirmations (PaymentTracker).
    public static func handlers(_ env: StageRunner.Environment) throws -> [String: any JobHandler] {
        [Payments.confirmJobKind: PaymentTracker(chains: env.config.chains, logger: env.logger)]
    }

    /// The stage's handlers and one scanner per chain of the configuration.
    public static func parts(_ env: StageRunner.Environment) throws -> StageRunner.Parts {
        let worker = env.config.worker(.chain)
        let scanners = env.config.chains.map { chain in
            ChainScanner(chain: chain, node: nodeClient(for: chain, logger: env.logger), database: env.database, lease: worker.lease,
                         backoff: worker.backoff, logger: env.logger)
        }
        if scanners.isEmpty { env.logger.warning("no chains are configured: nothing to scan") }
        return StageRunner.Parts(handlers: try handlers(env), services: scanners)
    }

    /// The node client of a configured chain.
    public static func nodeClient(for chain: ChainConfig, logger: Logger) -> any ChainNodeClient {
        var logger = logger
        logger[metadataKey: "chain"] = "\(chain.name)"
        switch chain.kind {
        case .evm: return EVMNodeClient(options: chain.nodeClientOptions, logger: logger)
        case .tron: return TronNodeClient(options: chain.nodeClientOptions, logger: logger)
        }
    }
}
