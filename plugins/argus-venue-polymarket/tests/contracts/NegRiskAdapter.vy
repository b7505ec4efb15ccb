# pragma version ~=0.4.0
"""Polymarket's NegRiskAdapter.redeemPositions (src/NegRiskAdapter.sol) with its real
signature and steps: take the caller's YES/NO position tokens (``_amounts`` = [yes, no]) by
``safeBatchTransferFrom`` (the caller must have approved the adapter on the CTF), redeem
them on the CTF against the wrapped collateral, unwrap the payout to the caller, emit
``PayoutRedemption``.  Test-only: the position ids are registered per condition instead
of derived from (WrappedCollateral, condition)."""

interface ICTF:
    def safeBatchTransferFrom(_from: address, to: address, ids: DynArray[uint256, 8], values: DynArray[uint256, 8], data: Bytes[1024]): nonpayable
    def redeemPositions(collateralToken: address, parentCollectionId: bytes32, conditionId: bytes32, indexSets: DynArray[uint256, 8]): nonpayable

interface IWrapped:
    def balanceOf(owner: address) -> uint256: view
    def unwrap(to: address, amount: uint256): nonpayable

event PayoutRedemption:
    redeemer: indexed(address)
    conditionId: indexed(bytes32)
    amounts: DynArray[uint256, 8]
    payout: uint256

ctf: public(address)
wcol: public(address)
positionIds: HashMap[bytes32, DynArray[uint256, 8]]


@deploy
def __init__(ctf: address, wcol: address):
    self.ctf = ctf
    self.wcol = wcol


@external
def registerCondition(conditionId: bytes32, yesId: uint256, noId: uint256):
    self.positionIds[conditionId] = [yesId, noId]


@external
def redeemPositions(_conditionId: bytes32, _amounts: DynArray[uint256, 8]):
    extcall ICTF(self.ctf).safeBatchTransferFrom(msg.sender, self, self.positionIds[_conditionId], _amounts, b"")
    extcall ICTF(self.ctf).redeemPositions(self.wcol, empty(bytes32), _conditionId, [1, 2])
    payout: uint256 = staticcall IWrapped(self.wcol).balanceOf(self)
    if payout > 0:
        extcall IWrapped(self.wcol).unwrap(msg.sender, payout)
    log PayoutRedemption(redeemer=msg.sender, conditionId=_conditionId, amounts=_amounts, payout=payout)
