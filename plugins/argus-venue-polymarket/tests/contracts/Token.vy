# pragma version ~=0.4.0
"""A minimal ERC-20 for the local chain: the collateral (pUSD / USDC.e) and, with an
underlying token, the NegRiskAdapter's WrappedCollateral (``unwrap`` as in Polymarket's
``src/WrappedCollateral.sol``: burn the caller's wrapped tokens, pay the underlying)."""

interface IERC20:
    def transfer(to: address, amount: uint256) -> bool: nonpayable

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

balanceOf: public(HashMap[address, uint256])
totalSupply: public(uint256)
underlying: public(address)


@deploy
def __init__(underlying: address):
    self.underlying = underlying


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@external
def transfer(to: address, amount: uint256) -> bool:
    assert self.balanceOf[msg.sender] >= amount, "ERC20: transfer amount exceeds balance"
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    log Transfer(sender=msg.sender, receiver=to, value=amount)
    return True


@external
def unwrap(to: address, amount: uint256):
    assert self.underlying != empty(address), "not a wrapped token"
    assert self.balanceOf[msg.sender] >= amount, "ERC20: burn amount exceeds balance"
    self.balanceOf[msg.sender] -= amount
    self.totalSupply -= amount
    assert extcall IERC20(self.underlying).transfer(to, amount), "unwrap transfer failed"
