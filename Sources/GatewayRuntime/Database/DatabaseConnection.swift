import Logging
import NIOCore
import PostgresNIO

/// A statement was not sent because its connection had already closed (the server went away, or the router closed
/// the pool of a node it gave up). Nothing of the statement reached the server.
public struct ConnectionClosed: Error, CustomStringConvertible, Sendable {
    public var description: String { "the connection to PostgreSQL has closed; the statement was not sent" }
}

/// A connection leased from `Database` for the statements of one transaction or one `withConnection` body.
///
/// Why not postgres-nio's `PostgresConnection` itself: in postgres-nio 1.33.2 a statement is written to the channel
/// with no write promise. Once a closed channel has removed its handlers (NIO does so one event-loop turn after the
/// close), such a write is dropped and its result never comes — the call waits forever. That is what a failover does
/// to a call between two statements, or to the ROLLBACK after a statement the closing connection failed (the failover
/// chaos saw calls stuck in "running its statements" and "committing"; InFlightCallsTests reproduce both). Here every
/// statement is written from the connection's own event loop right after checking, on that loop, that the channel is
/// still active: the handlers are then certainly in place, so the statement is either answered or failed by the close.
/// A closed connection fails the statement at once with `ConnectionClosed`.
public struct DatabaseConnection: Sendable {
    /// The postgres-nio connection. Send statements through this type's methods, never through it.
    public let underlying: PostgresConnection
    private let loop: ConnectionLoop

    init(_ connection: PostgresConnection) {
        underlying = connection
        loop = ConnectionLoop(connection.eventLoop)
    }

    /// Runs `query` and returns its rows (read them before the next statement on this connection).
    @discardableResult
    public func query(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line) async throws -> PostgresRowSequence {
        try await loop.query(underlying, query, logger: logger, file: file, line: line)
    }

    /// Runs a prepared statement (prepared on this connection at its first use) and returns its decoded rows.
    public func execute<Statement: PostgresPreparedStatement & Sendable>(
        _ statement: Statement, logger: Logger, file: String = #fileID, line: Int = #line
    ) async throws -> AsyncThrowingMapSequence<PostgresRowSequence, Statement.Row> where Statement.Row: Sendable {
        try await loop.execute(underlying, statement, logger: logger, file: file, line: line)
    }

    /// Listens on `channel` while `consume` reads the notifications. (postgres-nio writes LISTEN with a write promise:
    /// on a closed connection it fails at once, so it needs no check here.)
    public func listen<Value>(on channel: String, consume: (PostgresNotificationSequence) async throws -> Value) async throws -> Value {
        try await underlying.listen(on: channel, consume: consume)
    }
}

/// Runs on one connection's event loop (its executor is the loop's). postgres-nio's async calls are
/// `nonisolated(nonsending)` (the package builds with NonisolatedNonsendingByDefault), so a call made here runs on the
/// loop too, and its channel write happens in the same event-loop job as the check before it.
actor ConnectionLoop {
    private let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    nonisolated var unownedExecutor: UnownedSerialExecutor { eventLoop.executor.asUnownedSerialExecutor() }

    private func checkOpen(_ c: PostgresConnection) throws {
        eventLoop.assertInEventLoop()
        guard !c.isClosed else { throw ConnectionClosed() }
    }

    func query(_ c: PostgresConnection, _ query: PostgresQuery, logger: Logger, file: String, line: Int) async throws -> PostgresRowSequence {
        try checkOpen(c)
        return try await c.query(query, logger: logger, file: file, line: line)
    }

    func execute<Statement: PostgresPreparedStatement & Sendable>(
        _ c: PostgresConnection, _ statement: Statement, logger: Logger, file: String, line: Int
    ) async throws -> AsyncThrowingMapSequence<PostgresRowSequence, Statement.Row> where Statement.Row: Sendable {
        try checkOpen(c)
        return try await c.execute(statement, logger: logger, file: file, line: line)
    }
}
