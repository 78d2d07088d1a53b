// Both ChainKit (node wire JSON) and GatewayCore (Udun wire JSON) have a JSONValue; here it is GatewayCore's.
import GatewayCore

typealias JSONValue = GatewayCore.JSONValue
