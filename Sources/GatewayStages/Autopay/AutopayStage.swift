import GatewayCore
import GatewayRuntime

/// The autopay stage's job handlers.
public enum AutopayStage {
    /// Handlers by job kind. The stage's logic lands with its issue; until then the worker claims
    /// autopay jobs and records any of an unknown kind as dead with a clear reason.
    public static func handlers(_ env: StageRunner.Environment) throws -> [String: any JobHandler] {
        [:]
    }
}
