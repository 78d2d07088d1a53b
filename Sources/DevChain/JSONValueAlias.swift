// Both ChainKit (node wire JSON) and GatewayCore (Udun wire JSON) have a JSONValue; here it is ChainKit's.
import ChainKit

typealias JSONValue = ChainKit.JSONValue
