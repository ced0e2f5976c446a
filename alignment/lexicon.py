"""A curated zh↔en Minecraft lexicon: verbs, objects, stand-alone actions and the STEVE-1 paper prompts.

Everything here is data written for this project. Tables are ``|``-separated rows, parsed once at import:

* verbs:   ``id | object tags it applies to | zh patterns | en patterns``
* objects: ``id | tags | zh names | en names``
* actions: ``id | English prompt (class id) | zh phrasings | en paraphrases``

Alternatives are separated by ``/``. Patterns may contain ``{o}`` where the object goes; a pattern without it
gets the object appended (``砍`` → ``砍{o}``, ``mine`` → ``mine {o}``). The first English form is canonical:
a composed class's id is ``<first en verb pattern>`` filled with ``<first en object name>``, and that English
text is what MineCLIP encodes as the target.
"""

from __future__ import annotations

from dataclasses import dataclass

from zh_steve.errors import ConfigError


@dataclass(frozen=True)
class Entry:
    """One lexicon row. ``kind`` is ``verb``, ``object`` or ``action``; ``tags`` say which verbs fit objects."""

    id: str
    kind: str
    tags: tuple[str, ...]
    zh: tuple[str, ...]
    en: tuple[str, ...]


# ----------------------------------------------------------------------------------------------------------
# verbs: which object tags they take, Chinese patterns, English patterns
# ----------------------------------------------------------------------------------------------------------
_VERBS = """
chop     | tree                         | 砍/砍倒/伐/把{o}砍倒/砍掉                   | chop down {o}/chop {o}/cut down {o}
mine     | ore,stone                    | 开采/挖/采掘/挖掘/把{o}挖出来               | mine {o}/dig out {o}/break {o} with a pickaxe
dig      | soil                         | 挖/铲/刨/挖开/把{o}挖掉                     | dig {o}/dig up {o}/shovel {o}
break    | soil,stone,plant,glassy      | 打破/破坏/敲碎/打掉/拆掉                    | break {o}/destroy {o}/smash {o}
collect  | log,material,soil,stone,plant,food,meat | 收集/采集/搜集/弄点/获取/攒点     | collect {o}/gather {o}/get {o}/obtain {o}
find     | ore,animal,hostile,place,tree,plant | 找/寻找/找到/搜寻/去找                 | find {o}/look for {o}/search for {o}/locate {o}
craft    | tool,block_item              | 合成/制作/做/做一个                         | craft {o}/make {o}/create {o}
smelt    | smeltable                    | 冶炼/熔炼/熔化/提炼                         | smelt {o}/melt {o} in a furnace
cook     | meat                         | 烤/煮/烹饪/把{o}烤熟/烧烤                   | cook {o}/roast {o}/grill {o}
eat      | food,meat                    | 吃/吃掉/吃点/啃                             | eat {o}/consume {o}/have some {o}
place    | soil,stone,block_item        | 放置/放/摆/放下/摆放                        | place {o}/put down {o}/set down {o}
build    | structure                    | 建造/盖/搭/修建/建                          | build {o}/construct {o}/make {o}
kill     | hostile,animal               | 杀/杀死/击杀/干掉/消灭                      | kill {o}/slay {o}/take down {o}
attack   | hostile,animal               | 攻击/打/揍/袭击                             | attack {o}/hit {o}/fight {o}
hunt     | animal                       | 狩猎/猎/猎捕/捕猎                           | hunt {o}/go hunting for {o}
tame     | tameable                     | 驯服/驯养/驯化/收服                         | tame {o}/befriend {o}
feed     | animal                       | 喂/喂养/给{o}喂食/投喂                      | feed {o}/give food to {o}
breed    | breedable                    | 繁殖/让{o}繁殖/给{o}配种/让{o}生宝宝        | breed {o}/make {o} have babies
ride     | rideable                     | 骑/骑上/坐上/乘坐                           | ride {o}/get on {o}/mount {o}
avoid    | hostile                      | 躲开/避开/远离/躲避/离{o}远点               | avoid {o}/run away from {o}/stay away from {o}
goto     | place                        | 去/前往/走到/到{o}去/赶往                   | go to {o}/travel to {o}/head to {o}/walk to {o}
explore  | place                        | 探索/探险/考察/在{o}里探索/勘察             | explore {o}/look around {o}/wander through {o}
plant    | crop                         | 种/种植/栽种/栽                             | plant {o}/grow {o}/sow {o}
look     | animal,hostile,tree,lookable | 看/看着/看向/盯着/望向                      | look at {o}/stare at {o}/watch {o}
swim     | water                        | 在{o}里游泳/在{o}游泳/去{o}游泳/游过{o}     | swim in {o}/swim across {o}/go swimming in {o}
equip    | tool                         | 拿着/手持/装备/拿出/握着                    | equip {o}/hold {o}/take out {o}
drop     | tool,material,food           | 扔掉/丢掉/丢弃/扔                           | drop {o}/throw away {o}/toss {o}
pickup   | material,food,tool           | 捡起/拾起/捡/拿起                           | pick up {o}/grab {o}
use      | usable                       | 使用/用/用一下                              | use {o}/make use of {o}
open     | container                    | 打开/开/开启                                | open {o}/open up {o}
climb    | climbable                    | 爬/爬上/攀登/登上/爬到{o}上面               | climb {o}/climb up {o}/go up {o}
light    | flammable                    | 点燃/点着/引燃/点火烧                       | light {o}/ignite {o}/set fire to {o}
enchant  | enchantable                  | 附魔/给{o}附魔                              | enchant {o}/put an enchantment on {o}
repair   | enchantable                  | 修理/修好/修复/维修                         | repair {o}/fix {o}/mend {o}
trade    | trader                       | 和{o}交易/与{o}交易/同{o}交易/跟{o}换东西   | trade with {o}/barter with {o}
protect  | protectable                  | 保护/守护/保卫                              | protect {o}/defend {o}/guard {o}
shoot    | hostile,animal               | 射/射击/拿弓射/用箭射                       | shoot {o}/shoot arrows at {o}
cross    | crossable                    | 穿过/越过/横穿/渡过                         | cross {o}/get across {o}/go across {o}
"""

# ----------------------------------------------------------------------------------------------------------
# objects: tags, Chinese names, English names (with the article they take after a verb)
# ----------------------------------------------------------------------------------------------------------
_OBJECTS = """
tree             | tree,climbable               | 树/树木/大树/一棵树               | the tree/a tree/trees
oak_tree         | tree                         | 橡树/橡木树                       | an oak tree/oak trees
birch_tree       | tree                         | 白桦树/桦树                       | a birch tree/birch trees
spruce_tree      | tree                         | 云杉树/云杉                       | a spruce tree/spruce trees
jungle_tree      | tree                         | 丛林树/丛林木                     | a jungle tree/jungle trees
acacia_tree      | tree                         | 金合欢树/金合欢                   | an acacia tree/acacia trees
dark_oak_tree    | tree                         | 深色橡树/黑橡树                   | a dark oak tree/dark oak trees
wood             | log                          | 木头/木材/原木                    | wood/logs/some wood
oak_log          | log                          | 橡木原木/橡木                     | oak logs/oak wood
birch_log        | log                          | 白桦原木/白桦木                   | birch logs/birch wood
spruce_log       | log                          | 云杉原木/云杉木                   | spruce logs/spruce wood
planks           | material,block_item          | 木板/木板块                       | wooden planks/planks
sticks           | material,tool                | 木棍/棍子/木棒                    | sticks/wooden sticks
coal_ore         | ore                          | 煤矿石/煤矿                       | coal ore/coal ore blocks
iron_ore         | ore,smeltable                | 铁矿石/铁矿                       | iron ore/iron ore blocks
gold_ore         | ore,smeltable                | 金矿石/金矿                       | gold ore/gold ore blocks
diamond_ore      | ore                          | 钻石矿石/钻石矿                   | diamond ore/diamond ore blocks
redstone_ore     | ore                          | 红石矿石/红石矿                   | redstone ore/redstone ore blocks
lapis_ore        | ore                          | 青金石矿石/青金石矿               | lapis lazuli ore/lapis ore
emerald_ore      | ore                          | 绿宝石矿石/绿宝石矿               | emerald ore/emerald ore blocks
quartz_ore       | ore                          | 下界石英矿石/石英矿石             | nether quartz ore/quartz ore
ancient_debris   | ore,smeltable                | 远古残骸                          | ancient debris/netherite scrap ore
nether_gold_ore  | ore                          | 下界金矿石/下界金矿               | nether gold ore
coal             | material                     | 煤炭/煤                           | coal/lumps of coal
charcoal         | material                     | 木炭                              | charcoal
iron_ingot       | material                     | 铁锭/铁块                         | iron ingots/iron
gold_ingot       | material                     | 金锭/金块                         | gold ingots/gold
diamond          | material                     | 钻石                              | diamonds/a diamond
emerald          | material                     | 绿宝石                            | emeralds/an emerald
redstone         | material                     | 红石粉/红石                       | redstone dust/redstone
lapis            | material                     | 青金石                            | lapis lazuli/lapis
quartz           | material                     | 下界石英/石英                     | nether quartz/quartz
netherite        | material                     | 下界合金锭/下界合金               | netherite ingots/netherite
flint            | material                     | 燧石                              | flint
string           | material                     | 蜘蛛丝/线                         | string
feather          | material                     | 羽毛                              | feathers
leather          | material                     | 皮革/牛皮                         | leather
wool             | material,block_item          | 羊毛/羊毛块                       | wool/white wool
bone             | material                     | 骨头                              | bones/a bone
bone_meal        | material,usable              | 骨粉                              | bone meal
gunpowder        | material                     | 火药                              | gunpowder
ender_pearl      | material,usable              | 末影珍珠                          | ender pearls/an ender pearl
blaze_rod        | material                     | 烈焰棒                            | blaze rods/a blaze rod
slimeball        | material                     | 粘液球/史莱姆球                   | slimeballs/slime balls
paper            | material                     | 纸/纸张                           | paper
book             | material                     | 书/书本                           | books/a book
clay_ball        | material                     | 黏土球                            | clay balls
brick            | material                     | 红砖/砖头                         | bricks
egg              | material                     | 鸡蛋/蛋                           | eggs/an egg
sugar            | material                     | 糖/白糖                           | sugar
snowball         | material,usable              | 雪球                              | snowballs
rotten_flesh     | material,food                | 腐肉                              | rotten flesh
spider_eye       | material                     | 蜘蛛眼                            | spider eyes
honeycomb        | material                     | 蜜脾/蜂巢                         | honeycomb
ink_sac          | material                     | 墨囊                              | ink sacs
glowstone_dust   | material                     | 荧石粉                            | glowstone dust
dirt             | soil                         | 泥土/土/土块/泥巴                 | dirt/dirt blocks
grass_block      | soil                         | 草方块/草块                       | grass blocks/a grass block
sand             | soil,smeltable               | 沙子/沙块                         | sand/sand blocks
red_sand         | soil                         | 红沙                              | red sand
gravel           | soil                         | 沙砾/砂砾                         | gravel
clay             | soil                         | 黏土/黏土块                       | clay/clay blocks
snow             | soil                         | 雪/雪块                           | snow/snow blocks
soul_sand        | soil                         | 灵魂沙                            | soul sand
mycelium         | soil                         | 菌丝/菌丝体                       | mycelium
podzol           | soil                         | 灰化土                            | podzol
farmland         | soil                         | 耕地                              | farmland
stone            | stone                        | 石头/石块                         | stone/stone blocks
cobblestone      | stone,smeltable              | 圆石                              | cobblestone
granite          | stone                        | 花岗岩                            | granite
diorite          | stone                        | 闪长岩                            | diorite
andesite         | stone                        | 安山岩                            | andesite
obsidian         | stone                        | 黑曜石                            | obsidian
netherrack       | stone                        | 下界岩/地狱岩                     | netherrack
sandstone        | stone                        | 砂岩                              | sandstone
end_stone        | stone                        | 末地石                            | end stone
basalt           | stone                        | 玄武岩                            | basalt
blackstone       | stone                        | 黑石                              | blackstone
glowstone        | stone                        | 荧石/萤石                         | glowstone
ice              | stone                        | 冰/冰块                           | ice/ice blocks
packed_ice       | stone                        | 浮冰                              | packed ice
terracotta       | stone                        | 陶瓦                              | terracotta
prismarine       | stone                        | 海晶石                            | prismarine
magma_block      | stone                        | 岩浆块                            | magma blocks
mossy_cobble     | stone                        | 苔石                              | mossy cobblestone
leaves           | plant                        | 树叶/叶子                         | leaves/tree leaves
flower           | plant,crop                   | 花/花朵/一朵花                    | a flower/flowers
dandelion        | plant                        | 蒲公英                            | dandelions/a dandelion
poppy            | plant                        | 虞美人/罂粟                       | poppies/a poppy
tulip            | plant                        | 郁金香                            | tulips/a tulip
cornflower       | plant                        | 矢车菊                            | cornflowers/a cornflower
sunflower        | plant                        | 向日葵                            | sunflowers/a sunflower
tall_grass       | plant                        | 高草/草丛/杂草                    | tall grass/grass
mushroom         | plant,food                   | 蘑菇                              | mushrooms/a mushroom
cactus           | plant,crop                   | 仙人掌                            | cactus/a cactus
sugar_cane       | plant,crop                   | 甘蔗                              | sugar cane
bamboo           | plant,crop                   | 竹子                              | bamboo
vines            | plant,climbable              | 藤蔓                              | vines
kelp             | plant,food                   | 海带                              | kelp
lily_pad         | plant                        | 睡莲                              | lily pads/a lily pad
sapling          | plant,crop                   | 树苗                              | saplings/a sapling
seeds            | plant,crop                   | 种子/小麦种子                     | seeds/wheat seeds
wheat            | plant,crop                   | 小麦/麦子                         | wheat
pumpkin          | plant,crop                   | 南瓜                              | pumpkins/a pumpkin
melon            | plant,crop                   | 西瓜                              | melons/a melon
sweet_berries    | plant,food,crop              | 甜浆果/浆果                       | sweet berries/berries
cocoa_beans      | plant,crop                   | 可可豆                            | cocoa beans
dead_bush        | plant                        | 枯萎的灌木/枯灌木                 | dead bushes/a dead bush
fern             | plant                        | 蕨/蕨类                           | ferns
coral            | plant                        | 珊瑚                              | coral
seagrass         | plant                        | 海草                              | seagrass
nether_wart      | plant,crop                   | 下界疣                            | nether wart
apple            | food                         | 苹果                              | apples/an apple
bread            | food                         | 面包                              | bread
carrot           | food,crop                    | 胡萝卜                            | carrots/a carrot
potato           | food,crop                    | 马铃薯/土豆                       | potatoes/a potato
beetroot         | food,crop                    | 甜菜根/甜菜                       | beetroots
cookie           | food                         | 曲奇/饼干                         | cookies
cake             | food,block_item              | 蛋糕                              | a cake/cake
pumpkin_pie      | food                         | 南瓜派                            | pumpkin pie
golden_apple     | food                         | 金苹果                            | a golden apple/golden apples
mushroom_stew    | food                         | 蘑菇煲/蘑菇汤                     | mushroom stew
melon_slice      | food                         | 西瓜片                            | melon slices
golden_carrot    | food                         | 金胡萝卜                          | golden carrots
honey_bottle     | food                         | 蜂蜜瓶/蜂蜜                       | honey bottles/honey
steak            | food                         | 牛排/熟牛肉                       | steak/cooked beef
cooked_porkchop  | food                         | 熟猪排/烤猪排                     | cooked porkchops
beef             | meat                         | 生牛肉/牛肉                       | raw beef/beef
porkchop         | meat                         | 生猪排/猪肉                       | raw porkchops/porkchops
raw_chicken      | meat                         | 生鸡肉/鸡肉                       | raw chicken/chicken meat
mutton           | meat                         | 生羊肉/羊肉                       | raw mutton/mutton
cod              | meat                         | 生鳕鱼/鳕鱼                       | raw cod/cod
salmon           | meat                         | 生鲑鱼/鲑鱼/三文鱼                | raw salmon/salmon
rabbit_meat      | meat                         | 生兔肉/兔肉                       | raw rabbit/rabbit meat
pickaxe          | tool,usable,enchantable      | 镐/镐子/稿子                      | a pickaxe/pickaxe
wooden_pickaxe   | tool,enchantable             | 木镐/木头镐                       | a wooden pickaxe
stone_pickaxe    | tool,enchantable             | 石镐/石头镐                       | a stone pickaxe
iron_pickaxe     | tool,enchantable             | 铁镐/铁稿                         | an iron pickaxe
diamond_pickaxe  | tool,enchantable             | 钻石镐/钻石稿                     | a diamond pickaxe
sword            | tool,usable,enchantable      | 剑/宝剑                           | a sword/sword
wooden_sword     | tool,enchantable             | 木剑                              | a wooden sword
stone_sword      | tool,enchantable             | 石剑                              | a stone sword
iron_sword       | tool,enchantable             | 铁剑                              | an iron sword
diamond_sword    | tool,enchantable             | 钻石剑                            | a diamond sword
axe              | tool,usable,enchantable      | 斧头/斧子                         | an axe/axe
iron_axe         | tool,enchantable             | 铁斧                              | an iron axe
shovel           | tool,usable,enchantable      | 铲子/铁锹                         | a shovel/shovel
hoe              | tool,usable                  | 锄头                              | a hoe
bow              | tool,usable,enchantable      | 弓                                | a bow
arrows           | tool,material                | 箭/箭矢                           | arrows
crossbow         | tool,usable,enchantable      | 弩                                | a crossbow
shield           | tool,usable                  | 盾牌/盾                           | a shield
bucket           | tool,usable                  | 桶/铁桶                           | a bucket/an iron bucket
water_bucket     | tool,usable                  | 水桶/一桶水                       | a water bucket/a bucket of water
fishing_rod      | tool,usable                  | 钓鱼竿/鱼竿                       | a fishing rod
shears           | tool,usable                  | 剪刀                              | shears
flint_and_steel  | tool,usable                  | 打火石                            | flint and steel
compass          | tool,usable                  | 指南针                            | a compass
clock            | tool                         | 时钟/钟                           | a clock
map              | tool,usable                  | 地图                              | a map
trident          | tool,usable,enchantable      | 三叉戟                            | a trident
iron_helmet      | tool,enchantable             | 铁头盔                            | an iron helmet
iron_chestplate  | tool,enchantable             | 铁胸甲                            | an iron chestplate
iron_boots       | tool,enchantable             | 铁靴子/铁靴                       | iron boots
iron_armor       | tool,enchantable             | 铁盔甲/铁甲                       | iron armor
diamond_armor    | tool,enchantable             | 钻石盔甲/钻石甲                   | diamond armor
boat             | tool,rideable                | 船/小船                           | a boat/boat
minecart         | tool,rideable                | 矿车                              | a minecart
lead             | tool,usable                  | 拴绳                              | a lead
crafting_table   | block_item,container         | 工作台                            | a crafting table/crafting table
furnace          | block_item,container,flammable | 熔炉/炉子                       | a furnace/furnace
chest            | block_item,container         | 箱子/宝箱                         | a chest/chest
torch            | block_item                   | 火把                              | torches/a torch
bed              | block_item,usable            | 床                                | a bed/bed
door             | block_item,container         | 门/木门                           | a door/door
ladder           | block_item,climbable         | 梯子                              | a ladder/ladders
fence            | block_item                   | 栅栏                              | a fence/fences
glass            | block_item,glassy            | 玻璃                              | glass/glass blocks
tnt              | block_item,flammable         | TNT/炸药                          | TNT/dynamite
bookshelf        | block_item                   | 书架                              | a bookshelf/bookshelves
enchanting_table | block_item,usable            | 附魔台                            | an enchanting table
anvil            | block_item,usable            | 铁砧                              | an anvil
rails            | block_item                   | 铁轨/轨道                         | rails/minecart tracks
campfire         | block_item,flammable         | 营火/篝火                         | a campfire
trapdoor         | block_item,container         | 活板门                            | a trapdoor
sign             | block_item                   | 告示牌/牌子                       | a sign
barrel           | block_item,container         | 木桶                              | a barrel
jukebox          | block_item,usable            | 唱片机                            | a jukebox
bowl             | tool                         | 碗                                | a bowl/bowls
stone_bricks     | block_item                   | 石砖                              | stone bricks
hopper           | block_item                   | 漏斗                              | a hopper
lantern          | block_item                   | 灯笼                              | a lantern
piston           | block_item                   | 活塞                              | a piston
lever            | block_item,usable            | 拉杆                              | a lever
blast_furnace    | block_item,container         | 高炉                              | a blast furnace
ender_chest      | block_item,container         | 末影箱                            | an ender chest
shulker_box      | block_item,container         | 潜影盒                            | a shulker box
zombie           | hostile                      | 僵尸                              | a zombie/zombies
skeleton         | hostile                      | 骷髅/骷髅兵                       | a skeleton/skeletons
creeper          | hostile                      | 苦力怕/爬行者                     | a creeper/creepers
spider           | hostile                      | 蜘蛛/大蜘蛛                       | a spider/spiders
cave_spider      | hostile                      | 洞穴蜘蛛                          | a cave spider
enderman         | hostile                      | 末影人/小黑                       | an enderman/endermen
slime            | hostile                      | 史莱姆/粘液怪                     | a slime/slimes
witch            | hostile                      | 女巫                              | a witch
drowned          | hostile                      | 溺尸                              | a drowned/drowned zombies
husk             | hostile                      | 尸壳                              | a husk
blaze            | hostile                      | 烈焰人                            | a blaze/blazes
ghast            | hostile                      | 恶魂                              | a ghast
piglin           | hostile,trader               | 猪灵                              | a piglin/piglins
wither_skeleton  | hostile                      | 凋灵骷髅                          | a wither skeleton
phantom          | hostile                      | 幻翼                              | a phantom/phantoms
pillager         | hostile                      | 掠夺者                            | a pillager/pillagers
vindicator       | hostile                      | 卫道士                            | a vindicator
silverfish       | hostile                      | 蠹虫/蠹鱼                         | a silverfish
guardian         | hostile                      | 守卫者                            | a guardian
magma_cube       | hostile                      | 岩浆怪                            | a magma cube
ender_dragon     | hostile                      | 末影龙/末影龙boss                 | the ender dragon/the dragon
wither           | hostile                      | 凋灵                              | the wither
zombie_piglin    | hostile                      | 僵尸猪灵/僵尸猪人                 | a zombified piglin
hoglin           | hostile                      | 疣猪兽                            | a hoglin
evoker           | hostile                      | 唤魔者                            | an evoker
ravager          | hostile                      | 劫掠兽                            | a ravager
cow              | animal,breedable             | 牛/奶牛                           | a cow/cows
pig              | animal,breedable,rideable    | 猪/小猪                           | a pig/pigs
sheep            | animal,breedable             | 羊/绵羊                           | a sheep/sheep
chicken          | animal,breedable             | 鸡/小鸡                           | a chicken/chickens
horse            | animal,breedable,rideable,tameable | 马/骏马                     | a horse/horses
rabbit           | animal,breedable             | 兔子/小兔子                       | a rabbit/rabbits
wolf             | animal,tameable,protectable  | 狼                                | a wolf/wolves
cat              | animal,tameable,protectable  | 猫/小猫                           | a cat/cats
villager         | animal,trader,protectable    | 村民                              | a villager/villagers
llama            | animal,tameable,rideable     | 羊驼                              | a llama/llamas
fox              | animal,breedable             | 狐狸                              | a fox/foxes
squid            | animal                       | 鱿鱼/乌贼                         | a squid
dolphin          | animal                       | 海豚                              | a dolphin/dolphins
turtle           | animal,breedable,protectable | 海龟                              | a turtle/turtles
bee              | animal,breedable,protectable | 蜜蜂                              | a bee/bees
parrot           | animal,tameable              | 鹦鹉                              | a parrot/parrots
panda            | animal,breedable             | 熊猫                              | a panda/pandas
polar_bear       | animal                       | 北极熊                            | a polar bear
bat              | animal                       | 蝙蝠                              | a bat/bats
donkey           | animal,tameable,rideable     | 驴/毛驴                           | a donkey
iron_golem       | animal,protectable           | 铁傀儡/铁巨人                     | an iron golem
mooshroom        | animal,breedable             | 哞菇/蘑菇牛                       | a mooshroom
ocelot           | animal                       | 豹猫                              | an ocelot
strider          | animal,rideable              | 炽足兽                            | a strider
wandering_trader | animal,trader                | 流浪商人                          | a wandering trader
snow_golem       | animal                       | 雪傀儡/雪人                       | a snow golem/a snowman
tropical_fish    | animal                       | 热带鱼                            | tropical fish
village          | place,lookable,protectable   | 村庄/村子                         | a village/the village
cave             | place                        | 洞穴/山洞                         | a cave/caves
ocean            | place,water,crossable,lookable | 海洋/大海                       | the ocean/the sea
river            | place,water,crossable        | 河/河流/小河                      | a river/the river
lake             | place,water,crossable        | 湖/湖泊                           | a lake/the lake
desert           | place,crossable              | 沙漠                              | the desert/a desert
forest           | place,crossable              | 森林/树林                         | a forest/the woods
jungle           | place                        | 丛林/热带雨林                      | a jungle/the jungle
mountain         | place,climbable,lookable     | 山/山脉/高山                      | a mountain/mountains
hill             | place,climbable              | 小山/山丘                         | a hill/hills
swamp            | place,water                  | 沼泽                              | a swamp
plains           | place,crossable              | 平原/草原                         | the plains/a plains biome
taiga            | place                        | 针叶林                            | a taiga/a taiga forest
snowy_tundra     | place                        | 雪原/冰原                         | a snowy tundra/snowy plains
beach            | place,lookable               | 海滩/沙滩                         | a beach/the beach
savanna          | place                        | 热带草原/稀树草原                 | a savanna
badlands         | place                        | 恶地/平顶山                       | the badlands/a mesa
mushroom_island  | place                        | 蘑菇岛                            | a mushroom island
nether           | place                        | 下界/地狱                         | the nether
the_end          | place                        | 末地                              | the end
stronghold       | place                        | 要塞                              | a stronghold
mineshaft        | place                        | 废弃矿井/矿井                     | an abandoned mineshaft/a mineshaft
desert_temple    | place                        | 沙漠神殿/沙漠金字塔               | a desert temple/a desert pyramid
jungle_temple    | place                        | 丛林神庙                          | a jungle temple
shipwreck        | place                        | 沉船                              | a shipwreck
ocean_monument   | place                        | 海底神殿                          | an ocean monument
mansion          | place                        | 林地府邸                          | a woodland mansion
fortress         | place                        | 下界要塞                          | a nether fortress
bastion          | place                        | 堡垒遗迹                          | a bastion remnant
outpost          | place                        | 掠夺者前哨站/前哨站               | a pillager outpost
dungeon          | place                        | 地牢                              | a dungeon
ravine           | place,crossable              | 峡谷                              | a ravine
waterfall        | place,lookable               | 瀑布                              | a waterfall
lava_lake        | place                        | 岩浆湖                            | a lava lake
island           | place                        | 岛屿/小岛                         | an island
ruined_portal    | place                        | 废弃传送门                        | a ruined portal
igloo            | place                        | 冰屋                              | an igloo
spawn            | place                        | 出生点/重生点                     | the spawn point/spawn
birch_forest     | place                        | 白桦林                            | a birch forest
flower_forest    | place                        | 繁花森林                          | a flower forest
ice_spikes       | place                        | 冰刺平原                          | ice spikes/an ice spikes biome
house            | structure,protectable        | 房子/房屋/小房子                  | a house/a small house
shelter          | structure                    | 庇护所/避难所                     | a shelter
bridge           | structure                    | 桥/一座桥                         | a bridge
tower            | structure,climbable          | 塔/高塔                           | a tower/a tall tower
wall             | structure                    | 墙/围墙                           | a wall/walls
farm             | structure,protectable        | 农场/农田                         | a farm
nether_portal    | structure,flammable          | 下界传送门/传送门                 | a nether portal/a portal
pool             | structure,water              | 水池/泳池                         | a pool/a swimming pool
stairs           | structure                    | 楼梯/台阶                         | stairs/a staircase
tunnel           | structure                    | 隧道/地道                         | a tunnel
hut              | structure                    | 小屋/木屋                         | a hut/a wooden hut
castle           | structure                    | 城堡                              | a castle
animal_pen       | structure                    | 动物围栏/围栏                     | an animal pen
garden           | structure                    | 花园                              | a garden
road             | structure                    | 路/道路                           | a road/a path
pillar           | structure                    | 柱子/高柱                         | a pillar
treehouse        | structure                    | 树屋                              | a treehouse
mob_farm         | structure                    | 刷怪塔/刷怪场                     | a mob farm
well             | structure                    | 水井/井                           | a well
roof             | structure                    | 屋顶/房顶                         | a roof
base             | structure                    | 基地/据点                         | a base
lighthouse       | structure,climbable          | 灯塔                              | a lighthouse
wheat_farm       | structure                    | 麦田                              | a wheat farm
"""

# ----------------------------------------------------------------------------------------------------------
# the 11 STEVE-1 paper prompts (run_agent/paper_prompts.py) and the composed (verb, object) pairs they cover
# ----------------------------------------------------------------------------------------------------------
_PAPER = """
dig        | dig as far as possible | 尽可能往深处挖/一直往下挖/挖得越深越好/能挖多深挖多深/拼命往下挖/一直挖下去/往地底下挖/尽量挖深一点/挖到最深处
dirt       | get dirt, dig hole, dig dirt, gather a ton of dirt, collect dirt | 挖泥土/收集泥土/挖土/弄一大堆泥土/挖个坑/采集泥土/挖泥巴/获取土块/收集大量泥土/挖个洞弄点土
sky        | look at the sky | 看天空/抬头看天/仰望天空/看看天上/望向天空/看向天空/抬头望天/往天上看
leaves     | break leaves | 打树叶/破坏树叶/打掉树叶/敲掉叶子/清除树叶/把树叶打掉/拆树叶
wood       | chop down the tree, gather wood, pick up wood, chop it down, break tree | 砍树/伐木/砍木头/收集木头/砍倒这棵树/采集木材/撸树/砍树收集木头/把树砍倒/去砍点木头
seeds      | break tall grass, break grass, collect seeds, punch the ground, run around in circles getting seeds from bushes | 收集种子/打草/破坏草丛/拔草找种子/打草丛拿种子/到处跑收集种子/割草收集种子/在草丛里找种子
flower     | break a flower | 摘一朵花/采花/打掉一朵花/摘花/破坏花朵/把花摘下来/采一朵花
explore    | go explore | 去探索/到处探索/四处探险/去探险/出去逛逛/四处走走/去冒险/探索世界/到处转转
swim       | go swimming | 去游泳/游泳/下水游泳/游一会儿泳/去水里游泳/在水里游/游个泳
underwater | go underwater | 潜到水下/潜水/去水下/下潜到水底/钻到水里/到水底去/潜入水中/沉到水底
inventory  | open inventory | 打开背包/打开物品栏/看看背包/开背包/查看物品栏/打开库存/打开道具栏/看一下物品栏
"""

# (verb id, object id) → paper prompt name: these compositions are phrasings of a paper prompt
PAPER_COVERS: dict[tuple[str, str], str] = {
    ("chop", "tree"): "wood",
    ("collect", "wood"): "wood",
    ("dig", "dirt"): "dirt",
    ("collect", "dirt"): "dirt",
    ("break", "leaves"): "leaves",
    ("break", "flower"): "flower",
    ("collect", "flower"): "flower",
    ("collect", "seeds"): "seeds",
    ("break", "tall_grass"): "seeds",
}

# ----------------------------------------------------------------------------------------------------------
# stand-alone actions (no object): id | English prompt | zh phrasings | en paraphrases
# ----------------------------------------------------------------------------------------------------------
_ACTIONS = """
jump         | jump                     | 跳/跳起来/跳一跳/一直跳/原地跳/蹦一下              | jump/jump up and down/keep jumping
sneak        | sneak                    | 潜行/蹲下/蹲着走/偷偷走/猫着腰走                    | sneak/crouch/sneak around
sprint       | sprint forward           | 冲刺/快跑/往前冲/加速跑/全速奔跑                    | sprint forward/run fast/sprint
walk_forward | walk forward             | 向前走/往前走/前进/一直往前走/朝前走                | walk forward/move forward/keep walking
turn_left    | turn left                | 左转/向左转/往左拐/转向左边                         | turn left/turn to the left
turn_right   | turn right               | 右转/向右转/往右拐/转向右边                         | turn right/turn to the right
look_down    | look down at the ground  | 低头/往下看/看地面/低头看地上                       | look down at the ground/look down
look_around  | look around              | 四处看看/环顾四周/到处看看/东张西望                 | look around/look all around you
stand_still  | stand still              | 停下/别动/站着别动/原地不动/停住                    | stand still/stop moving/stay still
sleep        | sleep in a bed           | 睡觉/上床睡觉/去床上睡/睡一觉                       | sleep in a bed/go to sleep/sleep
fish         | go fishing               | 钓鱼/去钓鱼/钓几条鱼/钓点鱼                         | go fishing/catch some fish/fish
shear        | shear a sheep            | 剪羊毛/给羊剪毛/剪一下羊毛                          | shear a sheep/shear sheep for wool
milk         | milk a cow               | 挤牛奶/给奶牛挤奶/挤点奶                            | milk a cow/get milk from a cow
pillar_up    | pillar up                | 垫高/往上垫方块/垫方块上去/搭高自己                 | pillar up/jump and place blocks under yourself/tower up
go_home      | go home                  | 回家/回到家里/回家去/返回家中                       | go home/return home/head back home
survive      | survive the night        | 活过今晚/熬过夜晚/度过第一个晚上/撑过这一夜         | survive the night/survive until morning
circle       | run around in circles    | 转圈跑/绕圈跑/原地转圈/跑圈                         | run around in circles/run in circles
sunset       | watch the sunset         | 看日落/看夕阳/欣赏日落                              | watch the sunset/look at the sunset
jump_water   | jump into the water      | 跳进水里/跳到水里/跳下水                            | jump into the water/jump in the water
punch        | punch the air            | 空挥拳头/对着空气挥拳/挥拳                          | punch the air/swing your fist
drop_all     | drop everything          | 把东西都扔了/扔掉所有东西/清空背包                  | drop everything/empty your inventory
"""


# ----------------------------------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------------------------------

def _split(cell: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in cell.split("/") if s.strip())


def _rows(table: str, ncols: int, what: str) -> list[list[str]]:
    rows = []
    for line in table.strip().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != ncols:
            raise ConfigError(f"lexicon {what}: expected {ncols} cells in row {line!r}")
        rows.append(cells)
    return rows


def _with_slot(pattern: str, sep: str) -> str:
    return pattern if "{o}" in pattern else pattern + sep + "{o}"


def _parse() -> tuple[dict[str, Entry], dict[str, Entry], dict[str, Entry], dict[str, Entry]]:
    verbs = {
        r[0]: Entry(r[0], "verb", _split(r[1].replace(",", "/")),
                    tuple(_with_slot(p, "") for p in _split(r[2])), tuple(_with_slot(p, " ") for p in _split(r[3])))
        for r in _rows(_VERBS, 4, "verbs")
    }
    objects = {
        r[0]: Entry(r[0], "object", _split(r[1].replace(",", "/")), _split(r[2]), _split(r[3]))
        for r in _rows(_OBJECTS, 4, "objects")
    }
    paper = {r[0]: Entry(r[0], "paper", (), _split(r[2]), (r[1],)) for r in _rows(_PAPER, 3, "paper")}
    actions = {
        r[0]: Entry(r[0], "action", (), _split(r[2]), (r[1],) + tuple(e for e in _split(r[3]) if e != r[1]))
        for r in _rows(_ACTIONS, 4, "actions")
    }
    for table in (verbs, objects, paper, actions):
        for e in table.values():
            if not e.zh or not e.en:
                raise ConfigError(f"lexicon entry {e.id!r} has no Chinese or no English form")
    return verbs, objects, paper, actions


VERBS, OBJECTS, PAPER, ACTIONS = _parse()


def paper_prompts() -> dict[str, str]:
    """The 11 STEVE-1 paper prompts, name → English text."""
    return {k: e.en[0] for k, e in PAPER.items()}


def all_entries() -> list[Entry]:
    """Every lexicon entry (verbs, objects, paper prompts, stand-alone actions)."""
    return [*VERBS.values(), *OBJECTS.values(), *PAPER.values(), *ACTIONS.values()]


def compatible(verb: Entry, obj: Entry) -> bool:
    """True when the verb takes an object with one of its tags."""
    return bool(set(verb.tags) & set(obj.tags))


def zh_fragments(entry: Entry) -> tuple[str, ...]:
    """The literal Chinese text an entry contributes to a sentence (patterns split at ``{o}``)."""
    out: list[str] = []
    for form in entry.zh:
        out.extend(p for p in form.split("{o}") if p)
    return tuple(dict.fromkeys(out))
