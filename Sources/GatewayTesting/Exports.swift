@_exported import MerchantSide
