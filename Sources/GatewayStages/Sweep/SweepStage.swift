import GatewayCore
import GatewayRuntime

/// The sweep stage's job handlers.
public enum SweepStage {
    /// Handlers by job kind. The stage's logic lands with its issue; until then the worker claims
    /// sweep jobs and records any of an unknown kind as dead with a clear reason.
    public static func handlers(_ env: StageRunner.Environment) throws -> [String: any JobHandler] {
        [:]
    }
}
