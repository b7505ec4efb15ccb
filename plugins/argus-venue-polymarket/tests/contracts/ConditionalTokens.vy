# pragma version ~=0.4.0
"""The parts of gnosis ConditionalTokens (contracts/ConditionalTokens.sol, ERC1155/ERC1155.sol)
that redemption touches, with the real signatures, revert strings and payout rule:
``redeemPositions``, ``balanceOf``, ``payoutNumerators``, ``payoutDenominator``,
``isApprovedForAll`` / ``setApprovalForAll``, ``safeBatchTransferFrom`` and the
``PayoutRedemption`` event.  Test-only set-up: position ids are registered per
(collateral, condition, index set) instead of derived on alt_bn128, ``reportPayouts``
takes the condition id (no oracle / question id), ``mint`` stands in for ``splitPosition``."""

interface IERC20:
    def transfer(to: address, amount: uint256) -> bool: nonpayable

event PayoutRedemption:
    redeemer: indexed(address)
    collateralToken: indexed(address)
    parentCollectionId: indexed(bytes32)
    conditionId: bytes32
    indexSets: DynArray[uint256, 8]
    payout: uint256

payoutNumerators: public(HashMap[bytes32, DynArray[uint256, 8]])
payoutDenominator: public(HashMap[bytes32, uint256])
balanceOf: public(HashMap[address, HashMap[uint256, uint256]])
isApprovedForAll: public(HashMap[address, HashMap[address, bool]])
positionIdOf: HashMap[address, HashMap[bytes32, HashMap[uint256, uint256]]]


@external
def prepareCondition(collateral: address, conditionId: bytes32, positionIds: DynArray[uint256, 8]):
    assert len(self.payoutNumerators[conditionId]) == 0, "condition already prepared"
    zeros: DynArray[uint256, 8] = []
    for i: uint256 in range(len(positionIds), bound=8):
        self.positionIdOf[collateral][conditionId][1 << i] = positionIds[i]
        zeros.append(0)
    self.payoutNumerators[conditionId] = zeros


@external
def reportPayouts(conditionId: bytes32, payouts: DynArray[uint256, 8]):
    assert len(self.payoutNumerators[conditionId]) == len(payouts), "condition not prepared or found"
    assert self.payoutDenominator[conditionId] == 0, "payout denominator already set"
    den: uint256 = 0
    for num: uint256 in payouts:
        den += num
    assert den > 0, "payout is all zeroes"
    self.payoutNumerators[conditionId] = payouts
    self.payoutDenominator[conditionId] = den


@external
def mint(to: address, id: uint256, amount: uint256):
    self.balanceOf[to][id] += amount


@external
def setApprovalForAll(operator: address, approved: bool):
    self.isApprovedForAll[msg.sender][operator] = approved


@external
def safeBatchTransferFrom(_from: address, to: address, ids: DynArray[uint256, 8],
                          values: DynArray[uint256, 8], data: Bytes[1024]):
    assert len(ids) == len(values), "ERC1155: IDs and values must have same lengths"
    assert to != empty(address), "ERC1155: target address must be non-zero"
    assert _from == msg.sender or self.isApprovedForAll[_from][msg.sender], "ERC1155: need operator approval for 3rd party transfers."
    for i: uint256 in range(len(ids), bound=8):
        assert self.balanceOf[_from][ids[i]] >= values[i], "SafeMath: subtraction overflow"
        self.balanceOf[_from][ids[i]] -= values[i]
        self.balanceOf[to][ids[i]] += values[i]


@external
def redeemPositions(collateralToken: address, parentCollectionId: bytes32, conditionId: bytes32,
                    indexSets: DynArray[uint256, 8]):
    den: uint256 = self.payoutDenominator[conditionId]
    assert den > 0, "result for condition not received yet"
    slots: uint256 = len(self.payoutNumerators[conditionId])
    assert slots > 0, "condition not prepared yet"
    total: uint256 = 0
    full: uint256 = (1 << slots) - 1
    for indexSet: uint256 in indexSets:
        assert indexSet > 0 and indexSet < full, "got invalid index set"
        pid: uint256 = self.positionIdOf[collateralToken][conditionId][indexSet]
        num: uint256 = 0
        for j: uint256 in range(slots, bound=8):
            if indexSet & (1 << j) != 0:
                num += self.payoutNumerators[conditionId][j]
        stake: uint256 = self.balanceOf[msg.sender][pid]
        if stake > 0:
            total += stake * num // den
            self.balanceOf[msg.sender][pid] = 0
    if total > 0:
        assert parentCollectionId == empty(bytes32), "nested positions are not modelled"
        assert extcall IERC20(collateralToken).transfer(msg.sender, total), "could not transfer payout to message sender"
    log PayoutRedemption(redeemer=msg.sender, collateralToken=collateralToken,
                         parentCollectionId=parentCollectionId, conditionId=conditionId,
                         indexSets=indexSets, payout=total)
